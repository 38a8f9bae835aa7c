/**
 * LongVideoBench as downloaded from `longvideobench/LongVideoBench`: `lvb_val.json` (a list of
 * questions: video_id, question, question_wo_referring_query, candidates [...], correct_choice
 * (index), position, topic_category, question_category, level, id, video_path, subtitle_path,
 * duration_group, starting_timestamp_for_subtitles, duration, view_count) and the videos untarred
 * into `videos/<video_path>`. Prompt, max new tokens (32) and scoring as lmms-eval's
 * `longvideobench_val_v` task (frames only): accuracy over every question; per question category.
 */
import { join } from 'node:path';
import { extractLongVideoBench } from '../extract';
import { isFile, readJson, str, strings } from './files';
import { DatasetError, LETTERS, type Benchmark, type EvalItem } from './types';

const POST_PROMPT = "Answer with the option's letter from the given choices directly.\n";

export function longVideoBenchPrompt(question: string, candidates: readonly string[]): string {
  const options = candidates.map((c, i) => `${LETTERS[i]}. ${c}`).join('\n');
  return `${question}\n${options}\n${POST_PROMPT}`;
}

async function load(dir: string): Promise<EvalItem[]> {
  const file = join(dir, 'lvb_val.json');
  if (!isFile(file)) throw new DatasetError(`${dir}: no lvb_val.json (the LongVideoBench validation annotations)`);
  const rows = readJson(file);
  if (!Array.isArray(rows)) throw new DatasetError(`${file}: expected a list of questions`);
  return rows.map((row: Record<string, unknown>, i) => {
    const where = `${file} entry ${i}`;
    const candidates = strings(row, 'candidates', where);
    const correct = row.correct_choice;
    if (typeof correct !== 'number' || !Number.isInteger(correct) || correct < 0 || correct >= candidates.length) {
      throw new DatasetError(`${where}: correct_choice must be an index into candidates (0–${candidates.length - 1}), got ${JSON.stringify(correct)}`);
    }
    return {
      id: str(row, 'id', where),
      videoId: str(row, 'video_id', where),
      videoPath: join(dir, 'videos', str(row, 'video_path', where)),
      prompt: longVideoBenchPrompt(str(row, 'question', where), candidates),
      answer: LETTERS[correct],
      choices: candidates.map((_, k) => LETTERS[k]),
      task: str(row, 'question_category', where),
    };
  });
}

export const longvideobench: Benchmark = {
  name: 'longvideobench',
  title: 'LongVideoBench (val, frames only)',
  maxNewTokens: 32,
  overall: 'items',
  taskLabel: 'question category',
  load,
  extract: (response, item) => extractLongVideoBench(response, item.choices, item.id),
};
