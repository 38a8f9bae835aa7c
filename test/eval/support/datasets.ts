/**
 * Benchmarks in their published layouts, generated at test time: short videos made with ffmpeg
 * (solid colours, and a clip that flashes white a known number of times) and multiple-choice
 * questions about them, written as each benchmark ships its annotations:
 *  - VideoMME: `videomme/test-00000-of-00001.parquet` (the lmms-lab/Video-MME columns, `options` a
 *    list<string> column as pyarrow writes it) + `data/<videoID>.mp4`;
 *  - MLVU dev: `json/<n>_<task>.json` + `video/<n>_<task>/<video>` (and a generation task without
 *    candidates), or sy1998/MLVU_dev's `mlvu/test-00000-of-00001.parquet` + `<video_name>`;
 *  - LongVideoBench: `lvb_val.json` + `videos/<video_path>`.
 */
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { importEsm } from '../../../container/eval/esm';
import { videoFile, type Recipe } from '../../support/videos';

const x264 = ['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p'];

/** A 3-second solid-colour clip. */
export const colourClip = (colour: string): Recipe => ({ kind: 'ffmpeg', ext: '.mp4', args: ['-f', 'lavfi', '-i', `color=c=${colour}:s=64x48:r=10:d=3`, ...x264] });
/** A 4-second black clip that flashes white `n` times (0.2 s each, one a second). */
export const flashesClip = (n: number): Recipe => ({
  kind: 'ffmpeg',
  ext: '.mp4',
  args: ['-f', 'lavfi', '-i', 'color=c=black:s=64x48:r=10:d=4', '-vf', `drawbox=x=0:y=0:w=64:h=48:color=white:t=fill:enable='lt(mod(t,1),0.2)*lt(t,${n})'`, ...x264],
});

function place(src: string, dest: string): void {
  mkdirSync(dirname(dest), { recursive: true });
  copyFileSync(src, dest);
}

type ParquetColumn = { name: string; data: unknown[] };
type Writer = { parquetWriteBuffer(o: { columnData: ParquetColumn[]; schema: unknown[] }): ArrayBuffer };

/** A parquet file of string columns and list<string> columns, laid out as pyarrow writes them. */
async function writeParquet(file: string, rows: Record<string, string | string[]>[]): Promise<void> {
  const { parquetWriteBuffer } = await importEsm<Writer>('hyparquet-writer');
  const names = Object.keys(rows[0]);
  const schema: unknown[] = [{ name: 'schema', num_children: names.length }];
  for (const n of names) {
    if (Array.isArray(rows[0][n])) {
      schema.push(
        { name: n, repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
        { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
        { name: 'element', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
      );
    } else schema.push({ name: n, type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' });
  }
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, Buffer.from(parquetWriteBuffer({ columnData: names.map((n) => ({ name: n, data: rows.map((r) => r[n]) })), schema })));
}

const newDir = (name: string) => mkdtempSync(join(tmpdir(), `longsight-${name}-`));

/** VideoMME: two videos (red, blue), two questions each. */
export async function videoMmeDataset(): Promise<string> {
  const dir = newDir('videomme');
  const videos = { fFjv93ACGo8: await videoFile(colourClip('red')), Xp2oGLvQp2s: await videoFile(colourClip('blue')) };
  for (const [id, file] of Object.entries(videos)) place(file, join(dir, 'data', `${id}.mp4`));
  const row = (n: number, k: number, videoID: string, question: string, options: string[], answer: string, task: string) => ({
    video_id: String(n).padStart(3, '0'),
    duration: 'short',
    domain: 'Knowledge',
    sub_category: 'Humanity & History',
    url: `https://www.youtube.com/watch?v=${videoID}`,
    videoID,
    question_id: `${String(n).padStart(3, '0')}-${k}`,
    task_type: task,
    question,
    options,
    answer,
  });
  const colours = ['A. Red.', 'B. Blue.', 'C. Green.', 'D. Black.'];
  await writeParquet(join(dir, 'videomme', 'test-00000-of-00001.parquet'), [
    row(1, 1, 'fFjv93ACGo8', 'What colour fills the screen?', colours, 'A', 'Attribute Perception'),
    row(1, 2, 'fFjv93ACGo8', 'Does the colour change during the video?', ['A. Yes.', 'B. No.', 'C. Twice.', 'D. Once.'], 'B', 'Temporal Perception'),
    row(2, 1, 'Xp2oGLvQp2s', 'What colour fills the screen?', colours, 'B', 'Attribute Perception'),
    row(2, 2, 'Xp2oGLvQp2s', 'How many objects are visible?', ['A. 0.', 'B. 1.', 'C. 2.', 'D. 3.'], 'A', 'Counting Problem'),
  ]);
  return dir;
}

/** MLVU dev as per-task JSON files: plotQA (colours), count (flashes), and a generation task to skip. */
export async function mlvuJsonDataset(): Promise<string> {
  const dir = newDir('mlvu');
  place(await videoFile(colourClip('red')), join(dir, 'video', '1_plotQA', 'red.mp4'));
  place(await videoFile(colourClip('green')), join(dir, 'video', '1_plotQA', 'green.mp4'));
  place(await videoFile(flashesClip(3)), join(dir, 'video', '4_count', 'flashes.mp4'));
  const colours = ['red', 'green', 'blue', 'black'];
  const json = (file: string, rows: unknown[]) => {
    mkdirSync(join(dir, 'json'), { recursive: true });
    writeFileSync(join(dir, 'json', file), JSON.stringify(rows, null, 2));
  };
  json('1_plotQA.json', [
    { video: 'red.mp4', duration: 3, question: 'What colour is the screen?', candidates: colours, answer: 'red', question_type: 'plotQA' },
    { video: 'red.mp4', duration: 3, question: 'Is the screen dark?', candidates: ['yes', 'no'], answer: 'no', question_type: 'plotQA' },
    { video: 'green.mp4', duration: 3, question: 'What colour is the screen?', candidates: colours, answer: 'green', question_type: 'plotQA' },
  ]);
  json('4_count.json', [{ video: 'flashes.mp4', duration: 4, question: 'How many times does the screen flash white?', candidates: ['1', '2', '3', '4'], answer: '3', question_type: 'count' }]);
  json('8_sub_scene.json', [{ video: 'red.mp4', duration: 3, question: 'Describe the scene.', answer: 'A red screen.', question_type: 'subPlot' }]);
  return dir;
}

/** MLVU dev as lmms-eval reads it (sy1998/MLVU_dev): one parquet, the options inside the question, letter answers. */
export async function mlvuParquetDataset(): Promise<string> {
  const dir = newDir('mlvu-parquet');
  place(await videoFile(colourClip('red')), join(dir, 'needle_1.mp4'));
  place(await videoFile(colourClip('blue')), join(dir, 'ego_2.mp4'));
  await writeParquet(join(dir, 'mlvu', 'test-00000-of-00001.parquet'), [
    { video_name: 'needle_1.mp4', question: 'What colour is it?\n(A) red\n(B) blue', candidates: ['red', 'blue'], answer: 'A', task_type: 'needle', question_id: 'needle_1_0' },
    { video_name: 'ego_2', question: 'What colour is it?\n(A) red\n(B) blue', candidates: ['red', 'blue'], answer: 'B', task_type: 'ego', question_id: 'ego_2_0' },
  ]);
  return dir;
}

/** LongVideoBench validation: two videos, five- and four-option questions. */
export async function longVideoBenchDataset(): Promise<string> {
  const dir = newDir('lvb');
  place(await videoFile(colourClip('yellow')), join(dir, 'videos', '86CxyhFV9MI.mp4'));
  place(await videoFile(flashesClip(2)), join(dir, 'videos', 'pTLVqsZkSVo.mp4'));
  const q = (id: string, videoId: string, question: string, candidates: string[], correct: number, category: string) => ({
    video_id: videoId,
    question,
    question_wo_referring_query: question,
    candidates,
    correct_choice: correct,
    position: [0],
    topic_category: 'NP-News-Programs',
    question_category: category,
    level: 'L1-Perception',
    id,
    video_path: `${videoId}.mp4`,
    subtitle_path: `${videoId}_en.json`,
    duration_group: 15,
    starting_timestamp_for_subtitles: 0,
    duration: 3,
    view_count: 1000,
  });
  writeFileSync(
    join(dir, 'lvb_val.json'),
    JSON.stringify([
      q('86CxyhFV9MI_0', '86CxyhFV9MI', 'What colour is the screen?', ['yellow', 'purple', 'grey', 'white', 'orange'], 0, 'S2A'),
      q('86CxyhFV9MI_1', '86CxyhFV9MI', 'Does anything move?', ['yes', 'no', 'twice', 'always'], 1, 'E2O'),
      q('pTLVqsZkSVo_0', 'pTLVqsZkSVo', 'How often does the screen flash?', ['once', 'twice', 'never', 'four times'], 1, 'S2A'),
    ]),
  );
  return dir;
}
