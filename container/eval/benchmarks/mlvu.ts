/**
 * MLVU dev, in either layout it is published in:
 *  - the per-task JSON files of the MLVU dev set (`json/1_plotQA.json` … `json/7_topic_reasoning.json`,
 *    each a list of {video, duration, question, candidates [...], answer (the correct candidate's
 *    text), question_type}; videos in `video/<file stem>/<video>`); `8_sub_scene` and `9_summary`
 *    are generation tasks without candidates and are left out;
 *  - `sy1998/MLVU_dev` as lmms-eval reads it (`mlvu/test-00000-of-00001.parquet`: video_name,
 *    duration, question with its options as "(A) …" lines, candidates, answer (a letter), task_type,
 *    question_id; videos at `<video_name>`).
 * Prompt (the question and its "(A) …" options, then "\nOnly give the best option.\nBest option: ("),
 * max new tokens (16), extraction and M-Avg (the mean of the 7 multiple-choice tasks' accuracies)
 * as lmms-eval's `mlvu_dev` task.
 */
import { existsSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { extractMlvu } from '../extract';
import { readParquetRows } from '../parquet';
import { firstFile, parquetFiles, readJson, str, strings } from './files';
import { DatasetError, LETTERS, type Benchmark, type EvalItem } from './types';

/** The multiple-choice tasks M-Avg averages (lmms-eval's mlvu_aggregate_results_dev). */
export const MLVU_TASKS = ['plotQA', 'needle', 'ego', 'count', 'order', 'anomaly_reco', 'topic_reasoning'] as const;

const POST_PROMPT = '\nOnly give the best option.\nBest option: (';

/** The question with its options, as `sy1998/MLVU_dev` stores it. */
export function mlvuQuestion(question: string, candidates: readonly string[]): string {
  return [question, ...candidates.map((c, i) => `(${LETTERS[i]}) ${c}`)].join('\n');
}

export function mlvuPrompt(questionWithOptions: string): string {
  return `${questionWithOptions}${POST_PROMPT}`;
}

/** `1_plotQA.json` → plotQA. */
const taskOfFile = (file: string) => basename(file, '.json').replace(/^\d+_/, '');

function loadJsonLayout(root: string): EvalItem[] {
  const jsonDir = join(root, 'json');
  const files = readdirSync(jsonDir).filter((f) => f.endsWith('.json')).sort((a, b) => parseInt(a, 10) - parseInt(b, 10) || a.localeCompare(b));
  const items: EvalItem[] = [];
  for (const f of files) {
    const file = join(jsonDir, f);
    const rows = readJson(file);
    if (!Array.isArray(rows)) throw new DatasetError(`${file}: expected a list of questions`);
    const task = taskOfFile(f);
    rows.forEach((row: Record<string, unknown>, i) => {
      if (!Array.isArray(row.candidates)) return; // a generation task (sub-scene captioning, summary)
      const where = `${file} entry ${i}`;
      const candidates = strings(row, 'candidates', where);
      const answer = str(row, 'answer', where);
      const k = candidates.indexOf(answer);
      if (k < 0) throw new DatasetError(`${where}: answer ${JSON.stringify(answer)} is not one of its candidates`);
      const video = str(row, 'video', where);
      items.push({
        id: `${task}-${i}`,
        videoId: `${basename(f, '.json')}/${video}`,
        videoPath: join(root, 'video', basename(f, '.json'), video),
        prompt: mlvuPrompt(mlvuQuestion(str(row, 'question', where), candidates)),
        answer: LETTERS[k],
        choices: candidates.map((_, j) => LETTERS[j]),
        task,
      });
    });
  }
  return items;
}

async function loadParquetLayout(dir: string, files: string[]): Promise<EvalItem[]> {
  const rows = (await Promise.all(files.map((f) => readParquetRows(f)))).flat();
  return rows.map((row, i) => {
    const where = `${files.length === 1 ? files[0] : dir} row ${i}`;
    const name = str(row, 'video_name', where);
    const task = str(row, 'task_type', where);
    const choices = Array.isArray(row.candidates) ? strings(row, 'candidates', where).map((_, j) => LETTERS[j]) : ['A', 'B', 'C', 'D'];
    // The parquet spells some names without their extension.
    const videoPath = firstFile([join(dir, name), join(dir, `${name}.mp4`), join(dir, 'video', name), join(dir, 'video', `${name}.mp4`)]) ?? join(dir, name);
    return {
      id: row.question_id !== undefined && row.question_id !== null ? str(row, 'question_id', where) : `${task}-${i}`,
      videoId: name,
      videoPath,
      prompt: mlvuPrompt(str(row, 'question', where)),
      answer: str(row, 'answer', where),
      choices,
      task,
    };
  });
}

async function load(dir: string): Promise<EvalItem[]> {
  for (const root of [dir, join(dir, 'MLVU')]) {
    if (existsSync(join(root, 'json'))) return loadJsonLayout(root);
  }
  const files = [...parquetFiles(join(dir, 'mlvu')), ...parquetFiles(dir)];
  if (files.length) return loadParquetLayout(dir, files);
  throw new DatasetError(`${dir}: no MLVU annotations (expected json/1_plotQA.json … from the MLVU dev set, or mlvu/test-00000-of-00001.parquet from sy1998/MLVU_dev)`);
}

export const mlvu: Benchmark = {
  name: 'mlvu',
  title: 'MLVU dev (M-Avg)',
  maxNewTokens: 16,
  overall: 'tasks',
  taskLabel: 'task',
  load,
  extract: (response) => extractMlvu(response),
};
