/**
 * A running job's progress: the stages the worker goes through (frames from S3, then the engine's
 * vision, prefill and decode), the job's share done and an ETA, written to the job item at a
 * bounded rate so that `longsight run` and `longsight status` can show them.
 *
 * The share done weights each stage by the planner's time model (container/plan/time.ts: the same
 * roofline `longsight plan` prints), evaluated on the worker's device: the GPU of its instance type,
 * or, on the CPU, rates measured on this project's CPU machine. Only the ratios between stages
 * matter: the ETA is the elapsed time scaled by what is left (elapsed × (1 − f) / f), so it
 * calibrates itself to the machine as the job runs.
 */
import type { JobProgress, JobStage } from '../../lib/contracts';
import { visualTokenCount } from '../model/progressive-pool';
import type { PlanModel } from '../plan/model-dims';
import { planJobTime, type GpuSpec } from '../plan/time';
import type { TransferBytes } from '../runtime/transfer-ledger';

/**
 * The CPU as the time model sees it: ~15 GFLOP/s achieved on compute-bound graphs (vision,
 * prefill) and ~1.8 GB/s of weights streamed per decoded token, as `npm run bench:lmm` measured
 * (BENCHMARKS.md) on a 2-core machine, expressed as peak figures at the planner's efficiencies.
 * Faster CPUs scale both; the ETA's self-calibration absorbs the absolute rate.
 */
export const CPU_TIME_SPEC: GpuSpec = {
  fp16Tflops: 0.03,
  memoryGBs: 2.6,
  hostLinkGBs: 1000,
  source: 'BENCHMARKS.md, bench:lmm on the CPU EP: 14.4 GFLOP/s in vision, 1.8 GB/s streamed per decoded token',
};

/** Estimated seconds of each stage for one job (only their ratios are used). */
export type StageWeights = Record<JobStage, number>;

export interface JobShapeForProgress {
  frames: number;
  pooling: { groupSize: number; strideHigh: number; strideLow: number };
  questions: string[];
  maxNewTokens: number;
}

const NO_TRANSFERS: TransferBytes = {
  total: 0,
  perGeneratedToken: 0,
  byKind: { pixels: 0, visionOut: 0, embeddings: 0, kvIn: 0, kvOut: 0, logits: 0, tokenIds: 0, logprobs: 0, rotary: 0, control: 0 },
};

/** Template tokens around the video and a question (`<|im_start|>user\n<video>\n … <|im_end|>\n<|im_start|>assistant\n`). */
const PROMPT_TOKENS = 9;

/**
 * The planner's phase times for this job on `spec`. Without a model (an engine the worker cannot
 * describe), every engine stage weighs the same. Frame loading is I/O the planner does not model:
 * its stage weighs nothing, so the share done starts with the vision stage.
 */
export function stageWeights(job: JobShapeForProgress, model: PlanModel | undefined, spec: GpuSpec = CPU_TIME_SPEC): StageWeights {
  if (!model) return { frames: 0, vision: 1, prefill: 1, decode: 1 };
  const visual = visualTokenCount(job.frames, model.vision.gridSize, job.pooling);
  // A question's tokens: about one per 4 characters of English, plus the template.
  const questionTokens = job.questions.map((q) => PROMPT_TOKENS + Math.ceil(q.length / 4));
  const t = planJobTime(model, { frames: job.frames, prefixTokens: visual + 4, questionTokens, answerTokens: job.maxNewTokens, dtype: model.packageDtype ?? 'fp32' }, NO_TRANSFERS, spec);
  return { frames: 0, vision: t.visionS, prefill: t.prefillS, decode: t.decodeS };
}

const ORDER: readonly JobStage[] = ['frames', 'vision', 'prefill', 'decode'];

/** The job's share done at `stage` with `done` of `total` units of it: the stages before it in full, this one in part. */
export function jobFraction(w: StageWeights, stage: JobStage, done: number, total: number): number {
  const sum = ORDER.reduce((s, k) => s + w[k], 0);
  if (!(sum > 0)) return 0;
  let before = 0;
  for (const k of ORDER) {
    if (k === stage) break;
    before += w[k];
  }
  const part = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
  return Math.min(1, (before + w[stage] * part) / sum);
}

/** Seconds left, from the time spent and the share done; undefined until 2% is done (too early to say). */
export function etaSeconds(fraction: number, elapsedMs: number): number | undefined {
  if (fraction < 0.02 || elapsedMs <= 0) return undefined;
  return Math.max(0, ((elapsedMs / 1000) * (1 - fraction)) / fraction);
}

export interface ProgressReporterOptions {
  weights: StageWeights;
  /** Writes one progress record (a conditional UpdateItem); its failures are the caller's to log. */
  write(progress: JobProgress): Promise<void>;
  /** At most one write per this many ms (the latest state is written when the interval has passed). */
  minIntervalMs: number;
  /** When the job's work began (claim), for the ETA. */
  startedAt: number;
  now?: () => number;
}

export interface ProgressReporter {
  report(stage: JobStage, done: number, total: number): void;
  /** The latest record (what the next write carries). */
  readonly latest: JobProgress | undefined;
  /** Stops writing: a pending write is dropped, one in flight is awaited. */
  stop(): Promise<void>;
}

/**
 * Keeps the latest progress and writes it at most once per `minIntervalMs`: the first report is
 * written at once, later ones when the interval since the last write has passed (a trailing write
 * carries the newest state, never a stale one). One write is in flight at a time.
 */
export function createProgressReporter(o: ProgressReporterOptions): ProgressReporter {
  const now = o.now ?? Date.now;
  let latest: JobProgress | undefined;
  let dirty = false;
  let lastWriteAt = -Infinity;
  let inFlight: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const flush = () => {
    timer = undefined;
    if (stopped || !dirty || inFlight || !latest) return;
    dirty = false;
    lastWriteAt = now();
    inFlight = o
      .write(latest)
      .catch(() => undefined)
      .finally(() => {
        inFlight = undefined;
        schedule();
      });
  };
  const schedule = () => {
    if (stopped || !dirty || inFlight || timer) return;
    const wait = Math.max(0, lastWriteAt + o.minIntervalMs - now());
    if (wait === 0) flush();
    else {
      timer = setTimeout(flush, wait);
      timer.unref?.();
    }
  };

  return {
    report(name, done, total) {
      if (stopped) return;
      const t = now();
      const fraction = jobFraction(o.weights, name, done, total);
      const eta = etaSeconds(fraction, t - o.startedAt);
      latest = { stage: name, done, total, fraction: Math.round(fraction * 1000) / 1000, ...(eta !== undefined ? { etaSeconds: Math.round(eta * 10) / 10 } : {}), at: new Date(t).toISOString() };
      dirty = true;
      schedule();
    },
    get latest() {
      return latest;
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      await inFlight;
    },
  };
}
