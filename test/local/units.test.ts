/**
 * The local run's pieces that need no servers: the status line drawn from one snapshot, finding
 * videos in folders, how a finished job reads, `--since`; and the local history (a real dynalite
 * on disk): one holder at a time, a rerun replacing its earlier record.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AnswerItem, JobItem } from '../../lib/contracts';
import { parseSince } from '../../container/cli/commands/jobs';
import { openHistory, recordJobs, withHistory } from '../../container/local/history';
import { answersOfJob, listJobs } from '../../container/local/job-queries';
import { costLine, formatJob, progressText } from '../../container/local/job-report';
import { phaseOf, statusText, type TrackedJob } from '../../container/local/job-tracking';
import { StatusLine } from '../../container/local/status-line';
import { findVideos } from '../../container/local/video-files';
import { captureStream } from '../e2e/support/capture';

const NOW = Date.parse('2026-05-01T12:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

function item(over: Partial<JobItem>): JobItem {
  return {
    jobId: 'j-0123456789abcdef0123456789abcdef',
    videoUri: 's3://b/a.mp4',
    video: { bucket: 'b', key: 'a.mp4' },
    status: 'QUEUED',
    attempts: 0,
    createdAt: iso(NOW - 60_000),
    updatedAt: iso(NOW - 1000),
    questions: [{ id: 'q1', text: 'What?' }],
    settings: {} as JobItem['settings'],
    timings: {},
    ...over,
  } as JobItem;
}

describe('the status line: counts and details from one snapshot', () => {
  const t = (over: Partial<TrackedJob>): TrackedJob => ({ file: '/v/a.mp4', key: 'a.mp4', uploadStartedAt: NOW - 10_000, ...over });

  it('a job is extracting until its message is sent, queued after, and its stale extraction count is not shown then', () => {
    expect(phaseOf(t({}))).toBe('extracting');
    expect(phaseOf(t({ item: item({ status: 'QUEUED' }) }))).toBe('extracting'); // the item exists before the frames do
    expect(phaseOf(t({ item: item({ status: 'QUEUED', enqueuedAt: iso(NOW) }) }))).toBe('queued');
    expect(phaseOf(t({ queued: true }))).toBe('queued'); // the handler said so before the next poll
    expect(phaseOf(t({ extractError: 'ignored', item: item({ status: 'QUEUED' }) }))).toBe('failed');
    expect(statusText([t({ extraction: { done: 2, total: 16 } })], NOW)).toBe('jobs 1: 1 extracting · 0 queued · 0 running · 0 done · 0 failed │ a.mp4 extracting 2/16 frames');
    // The "1 queued … │ extracting x: 2/16 frames": a queued job shows no extraction detail.
    expect(statusText([t({ queued: true, extraction: { done: 2, total: 16 } })], NOW)).toBe('jobs 1: 1 queued · 0 running · 0 done · 0 failed');
  });

  it('a running job shows its stage, share done and the ETA counted down from when the worker wrote it', () => {
    const progress = { stage: 'vision' as const, done: 12, total: 16, fraction: 0.41, etaSeconds: 9, at: iso(NOW - 2000) };
    const running = t({ item: item({ status: 'RUNNING', progress }) });
    expect(statusText([running], NOW)).toBe('jobs 1: 0 queued · 1 running · 0 done · 0 failed │ a.mp4 vision 12/16 frames · 41% · ETA 7 s');
    expect(progressText(progress, NOW + 60_000)).toBe('vision 12/16 frames · 41% · ETA any moment');
    expect(progressText({ stage: 'decode', done: 1, total: 3, fraction: 0.9, at: iso(NOW) }, NOW)).toBe('answered 1/3 questions · 90%');
  });

  it('running jobs first, at most two details, then how many more', () => {
    const jobs = [
      t({ key: 'x.mp4', extraction: { done: 1, total: 4 } }),
      t({ key: 'y.mp4', item: item({ status: 'RUNNING' }) }),
      t({ key: 'z.mp4' }),
      t({ key: 'd.mp4', item: item({ status: 'DONE' }) }),
    ];
    expect(statusText(jobs, NOW)).toBe('jobs 4: 2 extracting · 0 queued · 1 running · 1 done · 0 failed │ y.mp4 starting │ x.mp4 extracting 1/4 frames │ +1 more');
  });
});

describe('the status line off a terminal (CI, a pipe)', () => {
  it('prints a line when something changed, not for an ETA counting down alone', () => {
    const out = captureStream();
    const line = new StatusLine(out, 0, 60_000);
    line.update('jobs 1: 1 running │ a.mp4 vision 2/8 frames · 21% · ETA 40 s');
    line.update('jobs 1: 1 running │ a.mp4 vision 2/8 frames · 21% · ETA 37 s');
    line.update('jobs 1: 1 running │ a.mp4 vision 8/8 frames · 60% · ETA 12 s');
    expect(out.text().trim().split('\n')).toEqual(['jobs 1: 1 running │ a.mp4 vision 2/8 frames · 21% · ETA 40 s', 'jobs 1: 1 running │ a.mp4 vision 8/8 frames · 60% · ETA 12 s']);
  });
});

describe('videos from files and folders', () => {
  const root = mkdtempSync(join(tmpdir(), 'longsight-videos-'));
  const touch = (p: string) => {
    mkdirSync(join(root, p, '..'), { recursive: true });
    writeFileSync(join(root, p), 'x');
  };
  for (const p of ['talks/a.mp4', 'talks/b.MOV', 'talks/notes.txt', 'talks/2024/c.mkv', 'talks/.hidden/d.mp4', 'other/a.mp4', 'empty/sub/e.webm']) touch(p);

  it('a folder gives its videos (by suffix, any case) keyed by folder and path; -r goes into subfolders, not hidden ones', () => {
    expect(findVideos([join(root, 'talks')])).toEqual([
      { file: join(root, 'talks/a.mp4'), key: 'talks/a.mp4' },
      { file: join(root, 'talks/b.MOV'), key: 'talks/b.MOV' },
    ]);
    expect(findVideos([join(root, 'talks')], { recursive: true }).map((v) => v.key)).toEqual(['talks/2024/c.mkv', 'talks/a.mp4', 'talks/b.MOV']);
  });

  it('files and folders together; the same file once; colliding keys made unique', () => {
    // other/a.mp4 is named twice (as a file, then in its folder): uploaded once.
    const v = findVideos([join(root, 'talks/a.mp4'), join(root, 'other/a.mp4'), join(root, 'talks/a.mp4'), join(root, 'other')]);
    expect(v).toEqual([
      { file: join(root, 'talks/a.mp4'), key: 'a.mp4' },
      { file: join(root, 'other/a.mp4'), key: '2-a.mp4' },
    ]);
    expect(findVideos([join(root, 'other'), join(root, 'talks')]).map((x) => x.key)).toEqual(['other/a.mp4', 'talks/a.mp4', 'talks/b.MOV']);
  });

  it('says what is wrong: nothing there, a folder without videos (and that -r would look deeper), not a video', () => {
    expect(() => findVideos([join(root, 'nope')])).toThrow(`no such video file or folder: ${join(root, 'nope')}`);
    expect(() => findVideos([join(root, 'empty')])).toThrow(/no videos in .*empty \(looked for \.mp4 .*; it has 1 subfolder: add -r to search them\)/);
    expect(findVideos([join(root, 'empty')], { recursive: true }).map((v) => v.key)).toEqual(['empty/sub/e.webm']);
    expect(() => findVideos([join(root, 'talks/notes.txt')])).toThrow(/notes\.txt: not a video suffix Longsight extracts/);
  });
});

describe('a finished job, read at a glance', () => {
  const done = item({
    status: 'DONE',
    createdAt: iso(NOW - 30_000),
    updatedAt: iso(NOW),
    frames: { count: 16, manifestKey: 'frames/x/manifest.json', durationSeconds: 95.5 },
    frameSpan: { firstSeconds: 2.9, lastSeconds: 92.6 },
    framesUsed: 16,
    timings: { extractMs: 5090, queueWaitMs: 850, frameLoadMs: 240, visionMs: 2220, prefillMs: 130, decodeMs: 1340, totalMs: 4130 },
    tokens: { visual: 977, prompt: 990, generated: 32 },
    ropeScale: 1,
    ropeMode: 'visual-yarn',
    poolingUsed: { groupSize: 4, strideHigh: 2, strideLow: 8 },
    modelId: 'm',
    cost: { seconds: 4.13, device: 'gpu', instanceType: 'g5.xlarge', usdPerHour: 1.006, usd: 0.001154 },
  });

  it('says so when prefill and decode were one run (a one-question job on the graph loop)', () => {
    const oneRun = { ...done, timings: { ...done.timings, prefillMs: 0, decodeMs: 29_300 } };
    expect(formatJob(oneRun, [], 'a.mp4', { uploadStartedAt: NOW - 35_000 }).split('\n')[1]).toBe(
      '   timings: extract 5.09 s · queue 0.85 s · worker 4.13 s (frames 0.24 s · vision 2.22 s · prefill + decode 29.3 s (one run))',
    );
  });

  it('leads with the end-to-end time, then where it went, then frames and their span, then the cost', () => {
    const text = formatJob(done, [], 'a.mp4', { uploadStartedAt: NOW - 35_000 });
    expect(text.split('\n')).toEqual([
      '✔ j-0123456789abcdef0123456789abcdef  a.mp4  DONE in 35.0 s (upload → answers)',
      '   timings: extract 5.09 s · queue 0.85 s · worker 4.13 s (frames 0.24 s · vision 2.22 s · prefill 0.13 s · decode 1.34 s)',
      '   16 frames over 0:02.9–1:32.6 (video 1 min 36 s long) · 977 visual tokens · s = 1.00 (visual-yarn) · pooling K=4 s_h=2 s_l=8 · 32 tokens generated · model m',
      "   cost: $0.0012 = 4.13 s of a g5.xlarge's GPU at $1.006/h",
    ]);
    // Without the upload time (status, jobs): from the job's creation.
    expect(formatJob(done, []).split('\n')[0]).toMatch(/DONE in 30\.0 s \(job created → answers\)$/);
  });

  it('says when a cost has no price', () => {
    expect(costLine({ cost: { seconds: 1.37, device: 'cpu', instanceType: 'local' } })).toBe('1.37 s of CPU on this machine (no price: local runs are not priced)');
    expect(costLine({ cost: { seconds: 70, device: 'gpu' } })).toBe('1 min 10 s of GPU on an instance of unknown type (no price)');
  });
});

describe('--since', () => {
  it('takes a date, a date-time or a span back from now; refuses anything else', () => {
    expect(parseSince('2h', NOW)).toBe(iso(NOW - 2 * 3600_000));
    expect(parseSince('30m', NOW)).toBe(iso(NOW - 30 * 60_000));
    expect(parseSince('7d', NOW)).toBe(iso(NOW - 7 * 86400_000));
    expect(parseSince('2026-04-30', NOW)).toBe('2026-04-30T00:00:00.000Z');
    expect(parseSince('2026-04-30T10:15:00Z', NOW)).toBe('2026-04-30T10:15:00.000Z');
    expect(() => parseSince('yesterday', NOW)).toThrow(/--since: expected a time like 2026-05-01/);
  });
});

describe('the local history', () => {
  it('keeps finished jobs: listed by status and video through the indexes; a rerun replaces its record and stale answers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'longsight-history-'));
    const answer = (questionId: string, text: string): AnswerItem => ({ jobId: 'j-0123456789abcdef0123456789abcdef', questionId, videoUri: 's3://b/a.mp4', question: questionId, answer: text, tokens: { prompt: 1, generated: 1 }, latencyMs: 1, answeredAt: iso(NOW), modelId: 'm' });
    const a = item({ status: 'DONE', updatedAt: iso(NOW - 5000) });
    const b = item({ jobId: 'j-ffffffffffffffffffffffffffffffff', status: 'FAILED', reason: 'file is not a video', videoUri: 's3://b/b.mp4', updatedAt: iso(NOW) });
    await withHistory((h) => recordJobs(h, [a, b], [answer('q1', 'one'), answer('q2', 'two')]), { dir });
    // A second run of the same video (same job id) with one question.
    await withHistory((h) => recordJobs(h, [{ ...a, updatedAt: iso(NOW + 1000) }], [answer('q1', 'again')]), { dir });
    await withHistory(async (h) => {
      expect((await listJobs(h.ddb, h.jobsTable)).map((j) => j.jobId)).toEqual([a.jobId, b.jobId]);
      expect((await listJobs(h.ddb, h.jobsTable, { status: 'FAILED' })).map((j) => j.reason)).toEqual(['file is not a video']);
      expect((await listJobs(h.ddb, h.jobsTable, { videoUri: 's3://b/a.mp4' })).map((j) => j.updatedAt)).toEqual([iso(NOW + 1000)]);
      expect((await listJobs(h.ddb, h.jobsTable, { since: iso(NOW + 500) })).map((j) => j.jobId)).toEqual([a.jobId]);
      expect((await answersOfJob(h.ddb, h.answersTable, a.jobId)).map((x) => x.answer)).toEqual(['again']);
    }, { dir });
  });

  it('one process at a time: another waits, then is told who holds it; a dead holder is taken over', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'longsight-history-'));
    const h = await openHistory({ dir });
    try {
      await expect(openHistory({ dir, waitMs: 300 })).rejects.toThrow(new RegExp(`the local history \\(${dir}\\) is held by process ${process.pid}: try again when it has finished`));
    } finally {
      await h.close();
    }
    // A lock left by a process that is gone (pids this large are not in use).
    writeFileSync(join(dir, 'longsight.lock'), '4194000');
    await withHistory(async (h2) => expect(await listJobs(h2.ddb, h2.jobsTable)).toEqual([]), { dir, waitMs: 300 });
  });
});
