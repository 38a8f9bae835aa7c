/**
 * @jest-environment ./test/convert/support/onnx-environment.js
 */
/**
 * The benchmarks read as published (datasets generated here in each layout, VideoMME's and MLVU's
 * parquet written as pyarrow lays out list columns): every field where lmms-eval takes it, the
 * videos where the downloads unpack them, and clear errors for what is missing.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BENCHMARK_DEFINITIONS } from '../../container/eval/benchmarks';
import { planJobs, selectItems, sidecarFor } from '../../container/eval/run';
import { expandGrid } from '../../container/eval/grid';
import { SidecarSchema } from '../../lib/contracts';
import { longVideoBenchDataset, mlvuJsonDataset, mlvuParquetDataset, videoMmeDataset } from './support/datasets';

jest.setTimeout(120_000);

const { videomme, mlvu, longvideobench } = BENCHMARK_DEFINITIONS;

test('VideoMME: the parquet rows, options as listed, videos under data/<videoID>.mp4', async () => {
  const dir = await videoMmeDataset();
  const items = await selectItems(videomme, dir);
  expect(items.map((i) => [i.id, i.videoId, i.answer, i.task])).toEqual([
    ['001-1', 'fFjv93ACGo8', 'A', 'Attribute Perception'],
    ['001-2', 'fFjv93ACGo8', 'B', 'Temporal Perception'],
    ['002-1', 'Xp2oGLvQp2s', 'B', 'Attribute Perception'],
    ['002-2', 'Xp2oGLvQp2s', 'A', 'Counting Problem'],
  ]);
  expect(items[0].prompt).toContain('\nWhat colour fills the screen?\nA. Red.\nB. Blue.\nC. Green.\nD. Black.\n\nAnswer with');
  expect(items[0].videoPath).toBe(join(dir, 'data', 'fFjv93ACGo8.mp4'));
  // One job per video holding both its questions; the sidecar asks only them, greedily, 16 tokens.
  const jobs = planJobs(videomme, expandGrid([8], [], [], false), items, new Set());
  expect(jobs.map((j) => [j.key, j.items.length])).toEqual([
    ['eval/videomme/f8_default_default/fFjv93ACGo8.mp4', 2],
    ['eval/videomme/f8_default_default/Xp2oGLvQp2s.mp4', 2],
  ]);
  const sidecar = SidecarSchema.parse(sidecarFor(videomme, jobs[0]));
  expect(sidecar).toMatchObject({ defaultQuestions: false, frames: 8, maxNewTokens: 16, sampling: { temperature: 0 } });
  expect(sidecar.questions).toEqual(jobs[0].items.map((i) => i.prompt));
});

test('MLVU: per-task JSON (letters from the candidates, generation tasks left out) and sy1998/MLVU_dev parquet', async () => {
  const dir = await mlvuJsonDataset();
  const items = await selectItems(mlvu, dir);
  expect(items.map((i) => [i.id, i.task, i.answer, i.choices.length])).toEqual([
    ['plotQA-0', 'plotQA', 'A', 4],
    ['plotQA-1', 'plotQA', 'B', 2],
    ['plotQA-2', 'plotQA', 'B', 4],
    ['count-0', 'count', 'C', 4],
  ]);
  expect(items[3].prompt).toBe('How many times does the screen flash white?\n(A) 1\n(B) 2\n(C) 3\n(D) 4\nOnly give the best option.\nBest option: (');
  expect(items[3].videoPath).toBe(join(dir, 'video', '4_count', 'flashes.mp4'));

  const pq = await mlvuParquetDataset();
  const rows = await selectItems(mlvu, pq);
  expect(rows.map((i) => [i.id, i.task, i.answer, i.videoPath])).toEqual([
    ['needle_1_0', 'needle', 'A', join(pq, 'needle_1.mp4')],
    // The parquet spells some video names without their extension.
    ['ego_2_0', 'ego', 'B', join(pq, 'ego_2.mp4')],
  ]);
  expect(rows[0].prompt).toBe('What colour is it?\n(A) red\n(B) blue\nOnly give the best option.\nBest option: (');
});

test('LongVideoBench: lvb_val.json, letters from correct_choice, videos under videos/', async () => {
  const dir = await longVideoBenchDataset();
  const items = await selectItems(longvideobench, dir);
  expect(items.map((i) => [i.id, i.videoId, i.answer, i.choices.join(''), i.task])).toEqual([
    ['86CxyhFV9MI_0', '86CxyhFV9MI', 'A', 'ABCDE', 'S2A'],
    ['86CxyhFV9MI_1', '86CxyhFV9MI', 'B', 'ABCD', 'E2O'],
    ['pTLVqsZkSVo_0', 'pTLVqsZkSVo', 'B', 'ABCD', 'S2A'],
  ]);
  writeFileSync(join(dir, 'lvb_val.json'), JSON.stringify([{ id: 'x', video_id: 'v', question: 'q', candidates: ['a'], correct_choice: 3, video_path: 'v.mp4', question_category: 'S2A' }]));
  await expect(selectItems(longvideobench, dir)).rejects.toThrow(/lvb_val\.json entry 0: correct_choice must be an index into candidates \(0–0\), got 3/);
});

test('what is missing is named: the annotations, a field, the videos (with --limit as the way out)', async () => {
  const dir = await longVideoBenchDataset();
  await expect(selectItems(videomme, dir)).rejects.toThrow(/no VideoMME annotation file \(expected videomme\/test-00000-of-00001\.parquet from lmms-lab\/Video-MME\)/);
  await expect(selectItems(mlvu, dir)).rejects.toThrow(/no MLVU annotations \(expected json\/1_plotQA\.json/);
  rmSync(join(dir, 'videos', 'pTLVqsZkSVo.mp4'));
  await expect(selectItems(longvideobench, dir)).rejects.toThrow(/1 video of the 3 selected questions is missing \(e\.g\. .*pTLVqsZkSVo\.mp4\): unpack the benchmark's videos there, or pass --limit N/);
  expect((await selectItems(longvideobench, dir, 2)).length).toBe(2);
  writeFileSync(join(dir, 'lvb_val.json'), JSON.stringify([{ id: 'x', video_id: 'v', question: 'q', correct_choice: 0, video_path: 'v.mp4' }]));
  await expect(selectItems(longvideobench, dir)).rejects.toThrow(/entry 0: field "candidates" is missing/);
});
