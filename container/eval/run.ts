/**
 * `longsight eval`: a benchmark's questions through the real pipeline, read as its steps:
 *   selectItems (dataset as downloaded, --limit, videos present) → plan the jobs (per setting, one
 *   job per video holding all its questions: one prefill per video) → submit them to the target
 *   (local or a deployed stack) a window at a time → collect each finished job's answers, scored
 *   and appended to the results file → report (scores per task and overall, the job figures,
 *   a markdown table and plots for a sweep).
 * Resumable: a question already in the results file for a setting is not asked again.
 */
import { mkdirSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { MAX_QUESTIONS, QuestionTextSchema, questionId, type JobItem, type SidecarInput } from '../../lib/contracts';
import { StatusLine } from '../local/status-line';
import { BENCHMARK_DEFINITIONS, DatasetError, type Benchmark, type BenchmarkName, type EvalItem } from './benchmarks';
import { isFile } from './benchmarks/files';
import { settingName, type EvalSetting } from './grid';
import { appendResults, readResults, rowKey, type JobFigures, type ResultRow } from './results';
import { scoreItem } from './score';
import type { EvalTarget } from './target';

export interface EvalRunOptions {
  benchmark: BenchmarkName;
  data: string;
  settings: EvalSetting[];
  results: string;
  limit?: number;
  /** Starts the target once there is something to ask (not called when every question is answered). */
  target: () => Promise<EvalTarget>;
  /** Jobs submitted and not yet finished, at most. */
  window: number;
  timeoutSeconds?: number;
  /** Notices and progress (stderr). */
  err: NodeJS.WriteStream;
  pollMs?: number;
}

export interface EvalRunResult {
  bench: Benchmark;
  items: EvalItem[];
  /** Every row of this benchmark in the results file (earlier runs' too). */
  rows: ResultRow[];
  /** Questions asked now that got no answer, with why (their videos' jobs FAILED, …). */
  failures: { setting: string; id: string; reason: string }[];
  asked: number;
  wallMs: number;
}

/** One job: a video's questions under one setting (at most MAX_QUESTIONS distinct texts). */
interface PlannedJob {
  setting: EvalSetting;
  name: string;
  video: string;
  key: string;
  items: EvalItem[];
  texts: string[];
}

interface Submitted extends PlannedJob {
  jobId: string;
}

/** The questions the run is about: the dataset as downloaded, the first --limit of them, their videos present. */
export async function selectItems(bench: Benchmark, dir: string, limit?: number): Promise<EvalItem[]> {
  const all = await bench.load(resolve(dir));
  if (all.length === 0) throw new DatasetError(`${dir}: the ${bench.title} annotations hold no questions`);
  const items = limit ? all.slice(0, limit) : all;
  const missing = [...new Set(items.filter((i) => !isFile(i.videoPath)).map((i) => i.videoPath))];
  if (missing.length) {
    throw new DatasetError(
      `${missing.length} video${missing.length === 1 ? '' : 's'} of the ${items.length} selected questions ${missing.length === 1 ? 'is' : 'are'} missing (e.g. ${missing[0]}): unpack the benchmark's videos there, or pass --limit N`,
    );
  }
  return items;
}

const safeKeyPart = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '') || 'video';

/** Per setting, per video: jobs of at most MAX_QUESTIONS questions (identical prompts share one question). */
export function planJobs(bench: Benchmark, settings: EvalSetting[], items: EvalItem[], done: Set<string>): PlannedJob[] {
  const jobs: PlannedJob[] = [];
  for (const setting of settings) {
    const name = settingName(setting);
    const byVideo = new Map<string, EvalItem[]>();
    for (const item of items) {
      if (done.has(rowKey(name, item.id))) continue;
      byVideo.set(item.videoId, [...(byVideo.get(item.videoId) ?? []), item]);
    }
    for (const [videoId, videoItems] of byVideo) {
      const chunks: { items: EvalItem[]; texts: Set<string> }[] = [];
      for (const item of videoItems) {
        let chunk = chunks.find((c) => c.texts.has(item.prompt) || c.texts.size < MAX_QUESTIONS);
        if (!chunk) chunks.push((chunk = { items: [], texts: new Set() }));
        chunk.items.push(item);
        chunk.texts.add(item.prompt);
      }
      chunks.forEach((c, k) => {
        const video = c.items[0].videoPath;
        const part = chunks.length > 1 ? `.part${k + 1}` : '';
        jobs.push({ setting, name, video, key: `eval/${bench.name}/${name}/${safeKeyPart(videoId)}${part}${extname(video)}`, items: c.items, texts: [...c.texts] });
      });
    }
  }
  return jobs;
}

/** The sidecar of a job: only its questions, greedy, the benchmark's answer length, the setting. */
export function sidecarFor(bench: Benchmark, job: Pick<PlannedJob, 'setting' | 'texts'>): SidecarInput {
  const s = job.setting;
  return {
    questions: job.texts,
    defaultQuestions: false,
    frames: s.frames,
    maxNewTokens: bench.maxNewTokens,
    sampling: { temperature: 0, topP: 1, seed: 0 },
    ...(s.pooling ? { pooling: s.pooling } : {}),
    ...(s.rope ? { rope: { mode: s.rope } } : {}),
    ...(s.timeAware ? { timeAwarePrompt: true } : {}),
  };
}

export function jobFigures(job: JobItem): JobFigures {
  const t = job.timings ?? {};
  return {
    jobId: job.jobId,
    questions: job.questions.length,
    totalMs: t.totalMs,
    extractMs: t.extractMs,
    queueWaitMs: t.queueWaitMs,
    frameLoadMs: t.frameLoadMs,
    visionMs: t.visionMs,
    prefillMs: t.prefillMs,
    decodeMs: t.decodeMs,
    framesUsed: job.framesUsed,
    visualTokens: job.tokens?.visual,
    ropeMode: job.ropeMode,
    ropeScale: job.ropeScale,
    poolingUsed: job.poolingUsed,
    transferBytes: job.transferBytes?.total,
    fallback: job.fallback,
    modelId: job.modelId,
  };
}

/** A DONE job's rows: each question's answer, scored. Questions without an answer are failures. */
async function rowsOfJob(bench: Benchmark, target: EvalTarget, s: Submitted, item: JobItem): Promise<{ rows: ResultRow[]; missing: EvalItem[] }> {
  const answers = new Map((await target.answers(s.jobId)).map((a) => [a.questionId, a.answer]));
  const figures = jobFigures(item);
  const at = new Date().toISOString();
  const rows: ResultRow[] = [];
  const missing: EvalItem[] = [];
  for (const it of s.items) {
    const response = answers.get(questionId(it.prompt));
    if (response === undefined) {
      missing.push(it);
      continue;
    }
    const scored = scoreItem(bench, { id: it.id, response, answer: it.answer, choices: it.choices });
    rows.push({
      benchmark: bench.name,
      setting: s.name,
      frames: s.setting.frames,
      ...(s.setting.rope ? { rope: s.setting.rope } : {}),
      ...(s.setting.pooling ? { pooling: s.setting.pooling } : {}),
      timeAware: s.setting.timeAware,
      id: it.id,
      videoId: it.videoId,
      task: it.task,
      choices: it.choices,
      answer: it.answer,
      response,
      extracted: scored.extracted,
      correct: scored.correct,
      ...(scored.random ? { random: true } : {}),
      job: figures,
      at,
    });
  }
  return { rows, missing };
}

const duration = (ms: number) => {
  const s = Math.round(ms / 1000);
  return s >= 3600 ? `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m` : s >= 60 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${s}s`;
};

/** The progress line: questions answered of those asked now, jobs in flight, and the time left at the rate so far. */
function progressText(bench: Benchmark, p: { total: number; answered: number; failed: number; queued: number; running: number; waiting: number; startedAt: number }): string {
  const done = p.answered + p.failed;
  const elapsed = Date.now() - p.startedAt;
  const eta = done > 0 && done < p.total ? ` · ETA ${duration((elapsed / done) * (p.total - done))}` : '';
  return `eval ${bench.name}: ${done}/${p.total} questions (${Math.floor((100 * done) / Math.max(1, p.total))}%)${p.failed ? ` · ${p.failed} failed` : ''} │ jobs: ${p.waiting} uploading/extracting · ${p.queued} queued · ${p.running} running · ${duration(elapsed)} elapsed${eta}`;
}

export async function runEval(o: EvalRunOptions): Promise<EvalRunResult> {
  const started = Date.now();
  const bench = BENCHMARK_DEFINITIONS[o.benchmark];
  const items = await selectItems(bench, o.data, o.limit);
  const previous = readResults(o.results, bench.name);
  if (previous.skipped) o.err.write(`Notice: ${o.results}: ${previous.skipped} torn line(s) skipped (a run stopped mid-write); their questions are asked again.\n`);
  const done = new Set(previous.rows.map((r) => rowKey(r.setting, r.id)));
  const jobs = planJobs(bench, o.settings, items, done);
  const asked = jobs.reduce((n, j) => n + j.items.length, 0);
  const skipped = items.length * o.settings.length - asked;
  o.err.write(
    `${bench.title}: ${items.length} questions × ${o.settings.length} setting${o.settings.length === 1 ? '' : 's'}` +
      `${skipped ? ` · ${skipped} already in ${o.results}` : ''} · ${asked} to ask in ${jobs.length} job${jobs.length === 1 ? '' : 's'} (one per video and setting)\n`,
  );
  const rows = [...previous.rows];
  const failures: EvalRunResult['failures'] = [];
  if (jobs.length) {
    const target = await o.target();
    o.err.write(`Target: ${target.description}\n`);
    try {
      await runJobs(bench, o, target, jobs, rows, failures, asked);
    } finally {
      await target.close();
    }
  }
  return { bench, items, rows, failures, asked, wallMs: Date.now() - started };
}

/** Submits the jobs a window at a time and collects each one as it finishes. */
async function runJobs(bench: Benchmark, o: EvalRunOptions, target: EvalTarget, jobs: PlannedJob[], rows: ResultRow[], failures: EvalRunResult['failures'], total: number): Promise<void> {
  mkdirSync(dirname(resolve(o.results)), { recursive: true });
  const status = new StatusLine(o.err);
  const queue = [...jobs];
  const inFlight = new Map<string, Submitted>();
  const progress = { total, answered: 0, failed: 0, queued: 0, running: 0, waiting: 0, startedAt: Date.now() };
  const deadline = o.timeoutSeconds ? Date.now() + o.timeoutSeconds * 1000 : Infinity;
  let interrupted = false;
  const onSignal = () => (interrupted = true);
  process.on('SIGINT', onSignal);
  const fail = (s: PlannedJob, list: EvalItem[], reason: string) => {
    for (const it of list) failures.push({ setting: s.name, id: it.id, reason });
    progress.failed += list.length;
  };
  try {
    while (queue.length || inFlight.size) {
      while (queue.length && inFlight.size < o.window && !interrupted) {
        const job = queue.shift()!;
        const bad = job.items.filter((it) => !QuestionTextSchema.safeParse(it.prompt).success);
        if (bad.length) fail(job, bad, `question text refused: ${QuestionTextSchema.safeParse(bad[0].prompt).error?.issues[0]?.message}`);
        const good = { ...job, items: job.items.filter((it) => !bad.includes(it)), texts: job.texts.filter((t) => QuestionTextSchema.safeParse(t).success) };
        if (good.items.length === 0) continue;
        const jobId = await target.submit(good.video, good.key, sidecarFor(bench, good));
        inFlight.set(jobId, { ...good, jobId });
      }
      const states = await target.jobs([...inFlight.keys()]);
      progress.queued = progress.running = progress.waiting = 0;
      for (const [jobId, s] of inFlight) {
        const item = states.get(jobId);
        const lost = target.lost.get(jobId);
        if (item?.status === 'DONE') {
          const { rows: got, missing } = await rowsOfJob(bench, target, s, item);
          appendResults(o.results, got);
          rows.push(...got);
          progress.answered += got.length;
          if (missing.length) fail(s, missing, `job ${jobId} is DONE but recorded no answer to it`);
          inFlight.delete(jobId);
        } else if (item?.status === 'FAILED' || lost) {
          fail(s, s.items, `job ${jobId} FAILED: ${item?.reason ?? lost}`);
          status.println(`✘ ${s.key}: job ${jobId} FAILED: ${item?.reason ?? lost}`, o.err);
          inFlight.delete(jobId);
        } else if (item?.status === 'RUNNING') progress.running++;
        else if (item?.status === 'QUEUED' && item.enqueuedAt) progress.queued++;
        else progress.waiting++;
      }
      status.update(progressText(bench, progress));
      const stop = interrupted ? 'interrupted' : Date.now() > deadline ? `timed out after ${o.timeoutSeconds} s` : target.problem();
      if (stop) {
        for (const s of [...inFlight.values(), ...queue]) fail(s, s.items, stop);
        status.println(`Stopped: ${stop}; what was answered is in ${o.results}, a rerun asks the rest.`, o.err);
        break;
      }
      if (inFlight.size) await new Promise((r) => setTimeout(r, o.pollMs ?? 1000));
    }
  } finally {
    process.off('SIGINT', onSignal);
    status.done();
  }
}

/** Default results file: eval-results/<benchmark>.jsonl under the current directory. */
export function defaultResultsFile(benchmark: string, cwd: string): string {
  return join(cwd, 'eval-results', `${benchmark}.jsonl`);
}

/** `eval-results/mlvu.jsonl` → `eval-results/mlvu` (the table and plots are written beside it). */
export function reportStem(resultsFile: string): string {
  return join(dirname(resultsFile), basename(resultsFile, extname(resultsFile)));
}
