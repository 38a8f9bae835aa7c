/**
 * @jest-environment ./test/convert/support/onnx-environment.js
 */
/**
 * `longsight eval` end to end on this machine, through the real local pipeline (embedded
 * S3/SQS/DynamoDB, the extraction handler on ffmpeg, a worker process running the tiny converted
 * checkpoint): each benchmark generated in its published layout, asked, scored, written to the
 * results file and re-scored from it; a rerun asks nothing; a sweep writes its table and plots.
 * This checks the plumbing, not accuracy (the tiny model's answers are noise).
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../container/cli/main';
import type { ResultRow } from '../../container/eval/results';
import { longVideoBenchDataset, mlvuJsonDataset, videoMmeDataset } from './support/datasets';

jest.setTimeout(600_000);

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['node', 'longsight', ...args], { out: (s) => out.push(s), err: (s) => err.push(s) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

const rowsOf = (file: string): ResultRow[] => readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as ResultRow);
const work = () => mkdtempSync(join(tmpdir(), 'longsight-eval-'));

test('MLVU, 8 frames: per-task and overall scores printed, one job per video, the results file re-scores to the same numbers, a rerun asks nothing', async () => {
  const data = await mlvuJsonDataset();
  const results = join(work(), 'mlvu.jsonl');
  const r = await cli('eval', '--benchmark', 'mlvu', '--data', data, '--frames', '8', '--results', results);
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  expect(r.out).toMatch(/^MLVU dev \(M-Avg\) · scored as lmms-eval v0\.5 scores it/);
  expect(r.out).toMatch(/\nf8_default_default: M-Avg \d+\.\d \(mean of 2 tasks\) · \d\/4 questions correct\n {2}count +\d+\.\d +\(\d\/1\)\n {2}plotQA +\d+\.\d +\(\d\/3\)\n/);
  expect(r.out).toMatch(/3 jobs · [\d.]+ s per video on the worker \(median\) · \d+ visual tokens · s = 1\.00 \(visual-yarn\) · pooling 4,2,8/);

  const rows = rowsOf(results);
  expect(rows.map((x) => x.id).sort()).toEqual(['count-0', 'plotQA-0', 'plotQA-1', 'plotQA-2']);
  for (const x of rows) expect(x).toMatchObject({ benchmark: 'mlvu', setting: 'f8_default_default', frames: 8, job: { framesUsed: 8 } });
  // The red video's two questions were one job: one prefill for both.
  const red = rows.filter((x) => x.videoId === '1_plotQA/red.mp4');
  expect(new Set(red.map((x) => x.job.jobId)).size).toBe(1);
  expect(red[0].job.questions).toBe(2);
  expect(new Set(rows.map((x) => x.job.jobId)).size).toBe(3);

  const s = await cli('eval', 'score', '--benchmark', 'mlvu', '--predictions', results, '--json');
  expect(s.code).toBe(0);
  const scored = JSON.parse(s.out);
  expect(Object.keys(scored)).toEqual(['benchmark', 'score', 'tasks', 'items']);
  expect(scored.items).toEqual(rows.map((x) => ({ id: x.id, extracted: x.extracted, correct: x.correct })));
  const printed = Number(/M-Avg (\d+\.\d)/.exec(r.out)![1]);
  expect(scored.score.toFixed(1)).toBe(printed.toFixed(1));

  const again = await cli('eval', '--benchmark', 'mlvu', '--data', data, '--frames', '8', '--results', results, '--json');
  expect(again.code).toBe(0);
  expect(JSON.parse(again.out).settings[0].score).toMatchObject({ total: 4, score: scored.score });
  expect(rowsOf(results)).toHaveLength(4);
});

test('VideoMME (parquet) and LongVideoBench (time-aware prompts) end to end', async () => {
  const dir = work();
  const vm = await cli('eval', '--benchmark', 'videomme', '--data', await videoMmeDataset(), '--frames', '4', '--results', join(dir, 'vm.jsonl'), '--json');
  expect(vm.code).toBe(0);
  const vmSummary = JSON.parse(vm.out);
  expect(vmSummary.failed).toEqual([]);
  expect(vmSummary.settings[0].score.total).toBe(4);
  expect(Object.keys(vmSummary.settings[0].score.tasks).sort()).toEqual(['Attribute Perception', 'Counting Problem', 'Temporal Perception']);
  expect(rowsOf(join(dir, 'vm.jsonl')).every((x) => x.job.questions === 2 && typeof x.response === 'string')).toBe(true);

  const lvb = await cli('eval', '--benchmark', 'longvideobench', '--data', await longVideoBenchDataset(), '--frames', '4', '--time-aware', '--results', join(dir, 'lvb.jsonl'), '--json');
  expect(lvb.code).toBe(0);
  const lvbSummary = JSON.parse(lvb.out);
  expect(lvbSummary.settings[0]).toMatchObject({ setting: 'f4_default_default_time', timeAware: true, score: { total: 3 } });
  expect(Object.keys(lvbSummary.settings[0].score.tasks).sort()).toEqual(['E2O', 'S2A']);
  // LongVideoBench always names a letter (drawn when the response has none).
  expect(rowsOf(join(dir, 'lvb.jsonl')).every((x) => /^[A-E]$/.test(x.extracted))).toBe(true);
});

test('a sweep writes its markdown table and its plots (PNG and SVG) beside the results', async () => {
  const data = await mlvuJsonDataset();
  const dir = work();
  const results = join(dir, 'sweep.jsonl');
  const r = await cli('eval', '--benchmark', 'mlvu', '--data', data, '--frames', '4,8', '--rope', 'visual-yarn,off', '--limit', '2', '--results', results, '--json');
  expect(r.code).toBe(0);
  const summary = JSON.parse(r.out);
  expect(summary.settings.map((s: { setting: string }) => s.setting)).toEqual(['f4_visual-yarn_default', 'f8_visual-yarn_default', 'f4_off_default', 'f8_off_default']);
  const tokens = summary.settings.map((s: { visualTokens: number }) => s.visualTokens);
  expect(tokens[1]).toBeGreaterThan(tokens[0]);
  expect(summary.settings.map((s: { ropeApplied: string }) => s.ropeApplied)).toEqual(['visual-yarn', 'visual-yarn', 'off', 'off']);
  expect(summary.settings.every((s: { plannedPeakBytes: number }) => s.plannedPeakBytes > 0)).toBe(true);
  const table = readFileSync(join(dir, 'sweep.md'), 'utf8');
  expect(table).toMatch(/^# MLVU dev \(M-Avg\): 4 settings/);
  expect(table.match(/^\| [48] \| (visual-yarn|off) \| 4,2,8 \| no \| \d+\.\d \| \d \/ 2 \|/gm)).toHaveLength(4);
  for (const name of ['score', 'memory', 'time']) {
    expect(readFileSync(join(dir, `sweep-${name}.png`)).subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    expect(readFileSync(join(dir, `sweep-${name}.svg`), 'utf8')).toMatch(/<svg[^>]*>[\s\S]*frames/);
  }
  expect(summary.plots).toHaveLength(6);
});

test('eval score prints {benchmark, score, tasks, items}; usage errors name the problem', async () => {
  const file = join(work(), 'f.jsonl');
  writeFileSync(
    file,
    [
      { id: '001-1', response: 'The best answer is A.', answer: 'A', task: 'Attribute Perception' },
      { id: '001-2', response: 'b', answer: 'B', task: 'Temporal Perception' },
      { id: '002-1', response: '(B) blue', answer: 'B', task: 'Attribute Perception' },
    ]
      .map((x) => JSON.stringify(x))
      .join('\n'),
  );
  const s = await cli('eval', 'score', '--benchmark', 'videomme', '--predictions', file, '--json');
  expect(s.code).toBe(0);
  expect(JSON.parse(s.out)).toEqual({
    benchmark: 'videomme',
    score: (200 / 3),
    tasks: { 'Attribute Perception': { score: 100, correct: 2, total: 2 }, 'Temporal Perception': { score: 0, correct: 0, total: 1 } },
    items: [
      { id: '001-1', extracted: 'A', correct: true },
      { id: '001-2', extracted: '', correct: false },
      { id: '002-1', extracted: 'B', correct: true },
    ],
  });
  const text = await cli('eval', 'score', '--benchmark', 'videomme', '--predictions', file);
  expect(text.out).toMatch(/^VideoMME \(w\/o subtitles\): accuracy 66\.7 · 2\/3 questions correct\n {2}Attribute Perception {2}100\.0 {2}\(2\/2\)/);

  expect(await cli('eval', 'score', '--benchmark', 'videomme', '--predictions', join(work(), 'none.jsonl'))).toMatchObject({ code: 3, err: expect.stringMatching(/no such predictions file/) });
  expect(await cli('eval', '--benchmark', 'mlvu')).toMatchObject({ code: 2, err: expect.stringMatching(/missing --data/) });
  expect(await cli('eval', '--benchmark', 'mlvu', '--data', '/nonexistent', '--frames', '8,x')).toMatchObject({ code: 2 });
  const missing = await cli('eval', '--benchmark', 'videomme', '--data', work());
  expect(missing).toMatchObject({ code: 2, err: expect.stringMatching(/no VideoMME annotation file/) });
  expect(existsSync(join(process.cwd(), 'eval-results', 'videomme.jsonl'))).toBe(false);
});
