/**
 * VideoMME as downloaded from `lmms-lab/Video-MME`: `videomme/test-00000-of-00001.parquet` (one row
 * per question: video_id, duration, domain, sub_category, url, videoID, question_id, task_type,
 * question, options ["A. …", …], answer "A"–"D") and the videos unzipped from
 * `videos_chunked_*.zip` into `data/<videoID>.mp4` (lmms-eval also accepts .MP4 and .mkv).
 * Prompt, max new tokens (16) and scoring as lmms-eval's `videomme` task (without subtitles):
 * accuracy over every question; per task type.
 */
import { join } from 'node:path';
import { extractVideoMme } from '../extract';
import { readParquetRows } from '../parquet';
import { firstFile, parquetFiles, str, strings } from './files';
import { DatasetError, type Benchmark, type EvalItem } from './types';

/** lmms-eval's instruction, word for word (it mentions subtitles in the task without them too). */
const INSTRUCTION =
  'Select the best answer to the following multiple-choice question based on the video and the subtitles. Respond with only the letter (A, B, C, or D) of the correct option.';
/** The task's default post_prompt (videomme.yaml, lmms_eval_specific_kwargs.default). */
const POST_PROMPT = "\nAnswer with the option's letter from the given choices directly.";

export function videoMmePrompt(question: string, options: readonly string[]): string {
  return `${INSTRUCTION}\n${question}\n${options.join('\n')}\n${POST_PROMPT}`;
}

function videoPath(dir: string, videoId: string): string {
  const names = [`${videoId}.mp4`, `${videoId}.MP4`, `${videoId}.mkv`];
  return firstFile([...names.map((n) => join(dir, 'data', n)), ...names.map((n) => join(dir, n))]) ?? join(dir, 'data', names[0]);
}

async function load(dir: string): Promise<EvalItem[]> {
  const files = [...parquetFiles(join(dir, 'videomme')), ...parquetFiles(dir)];
  if (files.length === 0) throw new DatasetError(`${dir}: no VideoMME annotation file (expected videomme/test-00000-of-00001.parquet from lmms-lab/Video-MME)`);
  const rows = (await Promise.all(files.map((f) => readParquetRows(f)))).flat();
  return rows.map((row, i) => {
    const where = `${files.length === 1 ? files[0] : dir} row ${i}`;
    const options = strings(row, 'options', where);
    const videoId = str(row, 'videoID', where);
    return {
      id: str(row, 'question_id', where),
      videoId,
      videoPath: videoPath(dir, videoId),
      prompt: videoMmePrompt(str(row, 'question', where), options),
      answer: str(row, 'answer', where),
      choices: ['A', 'B', 'C', 'D'],
      task: str(row, 'task_type', where),
    };
  });
}

export const videomme: Benchmark = {
  name: 'videomme',
  title: 'VideoMME (w/o subtitles)',
  maxNewTokens: 16,
  overall: 'items',
  taskLabel: 'task type',
  load,
  extract: (response) => extractVideoMme(response),
};
