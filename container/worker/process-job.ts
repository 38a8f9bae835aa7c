/**
 * One delivery of one job message, start to end, read as its steps (each owns its writes):
 *   readMessage → startRun (heartbeat) → claimJob → loadJobFrames → runEngine (once more with
 *   settings.fallback on out-of-memory / sequence budget) → recordResult (answers, export, DONE) →
 *   finishDelivery (delete) — or, on an error, settleFailure (release for a retry, or FAILED).
 *
 * Message ownership (why no job is left without a message): a delivery deletes its message only
 * when the job is finished (DONE/FAILED, by anyone) or the message can never succeed. A delivery
 * that finds another live delivery's lease, or loses every claim round, hands the message back
 * with a delay beyond that lease: any valid receipt handle deletes an SQS message, so deleting a
 * copy could delete the owner's only message (the same message redelivered after its visibility
 * lapsed), and an owner that then died or failed would leave the job with no way forward.
 */
import { performance } from 'node:perf_hooks';
import { ChangeMessageVisibilityCommand, DeleteMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import type { S3Client } from '@aws-sdk/client-s3';
import { JOB_ID_PATTERN, parseJobMessage, type AnswerItem, type InferenceSettings, type JobCost, type JobItem, type JobMessage } from '../../lib/contracts';
import type { Logger } from '../../lib/log';
import type { AnswerEngine, EngineResult } from '../runtime/engine';
import { classifyFailure, errorMessage, isRetryableAwsError, JobAbandonedError, PermanentJobError } from './errors';
import { loadFrames, uniformSubset } from './frame-loader';
import { startHeartbeat, type Heartbeat } from './heartbeat';
import { exportRecords, writeExport } from './index-export';
import { createProgressReporter, stageWeights, type ProgressReporter } from './job-progress';
import type { ClaimResult, CompletionRecord, JobStore } from './job-store';
import type { Metrics } from './metrics';
import { retryUntil } from './retry';
import type { WorkerConfig } from '../../lib/contracts';
import type { PlanModel } from '../plan/model-dims';
import type { GpuSpec } from '../plan/time';

export interface JobDeps {
  s3: S3Client;
  sqs: SQSClient;
  store: JobStore;
  engine: AnswerEngine;
  config: WorkerConfig;
  queueUrl: string;
  workerId: string;
  heartbeatMs: number;
  /** Overrides engine.modelId in the records. */
  modelId?: string;
  log: Logger;
  metrics: Metrics;
  /** Aborted (with a JobAbandonedError) when the worker must give its jobs back now. */
  stopSignal: AbortSignal;
  /** The model's dimensions and the device, for the progress estimate's stage weights (job-progress.ts). */
  timeModel?: { model: PlanModel; spec?: GpuSpec };
  /** Where this worker runs and what an hour of its GPU (or CPU) costs, for each job's `cost`. */
  pricing?: WorkerPricing;
}

export interface WorkerPricing {
  device: 'gpu' | 'cpu';
  /** An EC2 instance type, "local", or absent when unknown. */
  instanceType?: string;
  /** USD per hour of the one GPU a job holds; absent when unpriced. */
  usdPerHour?: number;
}

/**
 * A job's cost: the seconds it held the worker × the hourly price of one GPU, shared by the
 * `sharedBy` jobs a worker runs on that GPU at once (usd absent when unpriced).
 */
export function jobCost(seconds: number, pricing: WorkerPricing | undefined, sharedBy = 1): JobCost {
  const s = Math.round(seconds * 1000) / 1000;
  const cost: JobCost = { seconds: s, device: pricing?.device ?? 'gpu' };
  if (pricing?.instanceType) cost.instanceType = pricing.instanceType;
  if (pricing?.usdPerHour !== undefined) {
    cost.usdPerHour = pricing.usdPerHour;
    cost.usd = Math.round(((s / 3600) * pricing.usdPerHour * 1e6) / sharedBy) / 1e6;
  }
  return cost;
}

export type JobOutcome =
  | 'done' // answers and DONE written, message deleted
  | 'failed' // FAILED written (permanent, or the last allowed delivery)
  | 'invalid' // the message broke the contract: FAILED when a job id could be read, message deleted
  | 'retry' // transient failure: QUEUED with the reason, the message comes back after retryDelaySeconds
  | 'duplicate' // the job is finished: this copy deleted
  | 'handed-back' // another live delivery owns the job (or claims raced): visible again after its lease
  | 'released' // worker stopping: the job is QUEUED again and the message visible at once
  | 'lost'; // another delivery took the job over: nothing written by this one

/** Rejects with the signal's reason as soon as it fires, even if `p` never settles (the engine may not check it). */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

export function jobIdIn(body: string | undefined): string | undefined {
  try {
    const id = (JSON.parse(body ?? '') as { jobId?: unknown }).jobId;
    return typeof id === 'string' && JOB_ID_PATTERN.test(id) ? id : undefined;
  } catch {
    return undefined;
  }
}

/** The settings and frames of the one retry after an out-of-memory or sequence-budget error, or undefined when none is configured. */
export function fallbackFor(settings: InferenceSettings, frameCount: number): { settings: InferenceSettings; frameIndices: number[]; description: string } | undefined {
  const fb = settings.fallback;
  const pooling = fb.pooling ?? settings.pooling;
  const frames = fb.frames !== undefined ? Math.min(fb.frames, frameCount) : frameCount;
  const samePooling = JSON.stringify(pooling) === JSON.stringify(settings.pooling);
  if (samePooling && frames >= frameCount) return undefined;
  const parts: string[] = [];
  if (!samePooling) parts.push(`pooling K=${pooling.groupSize} s_h=${pooling.strideHigh} s_l=${pooling.strideLow}`);
  if (frames < frameCount) parts.push(`${frames} of ${frameCount} frames`);
  return {
    settings: { ...settings, pooling, frames },
    frameIndices: uniformSubset(frameCount, frames),
    description: parts.join(', '),
  };
}

/** One received message and what this delivery may do with it. */
interface Delivery {
  deps: JobDeps;
  message: Message;
  receiveCount: number;
  receivedAt: number;
  /** Deletes the message (retried through throttling); never throws. */
  deleteMessage(): Promise<void>;
  /** Sets when the message is visible again; false when SQS refused (logged). */
  setVisibility(seconds: number): Promise<boolean>;
}

/** A delivery of a valid job message, from the heartbeat's start to its stop. */
interface Run extends Delivery {
  msg: JobMessage;
  log: Logger;
  /** Aborted when the worker stops or another delivery owns the job now. */
  signal: AbortSignal;
  heartbeat: Heartbeat;
  /** Set once claimed: the fencing token of this delivery's writes. */
  runToken?: string;
  claimedAt?: number;
  /** The job item as this delivery claimed it. */
  job?: Partial<JobItem>;
  /** Set once claimed: the job's stages written to its item at a bounded rate. */
  progress?: ProgressReporter;
  close(): void;
}

interface Frames {
  frames: Buffer[];
  /** The video's length (from the frame manifest), for time-aware prompts. */
  durationSeconds: number;
  fetchMs: number;
}

/** What the engine returned, the fallback it took, if any, and when the frames it saw were taken. */
interface EngineRun {
  result: EngineResult;
  fallback?: string;
  frameTimestamps: number[];
}

export async function processMessage(deps: JobDeps, m: Message): Promise<JobOutcome> {
  const d = openDelivery(deps, m);
  const read = await readMessage(d);
  if ('outcome' in read) return read.outcome;
  const run = startRun(d, read.msg);
  try {
    const claim = await claimJob(run);
    if (claim.outcome !== 'claimed') return await declineDelivery(run, claim);
    const frames = await loadJobFrames(run);
    const engineRun = await runEngine(run, frames);
    await recordResult(run, engineRun.result, { frameFetchMs: frames.fetchMs, fallback: engineRun.fallback, frameTimestamps: engineRun.frameTimestamps });
    return await finishDelivery(run, engineRun);
  } catch (e) {
    return await settleFailure(run, e);
  } finally {
    run.close();
  }
}

function openDelivery(deps: JobDeps, m: Message): Delivery {
  const { sqs, queueUrl } = deps;
  const receipt = m.ReceiptHandle!;
  return {
    deps,
    message: m,
    receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? '1'),
    receivedAt: Date.now(),
    deleteMessage: () =>
      retryUntil(() => sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: receipt })), { deadlineMs: 10_000, retryable: isRetryableAwsError })
        .then(() => undefined)
        .catch((e) => deps.log.warn('could not delete the message; a redelivery will find the job finished', { error: e, messageId: m.MessageId })),
    setVisibility: (seconds) =>
      sqs
        .send(new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: receipt, VisibilityTimeout: Math.max(0, Math.min(MAX_VISIBILITY_SECONDS, Math.ceil(seconds))) }))
        .then(() => true)
        .catch((e) => {
          deps.log.warn('could not change message visibility', { error: e, messageId: m.MessageId });
          return false;
        }),
  };
}

/** SQS's longest visibility timeout (12 hours). */
const MAX_VISIBILITY_SECONDS = 43_200;

/** 1. The contract. An invalid message can never succeed: FAILED (if it names a job), deleted. */
async function readMessage(d: Delivery): Promise<{ msg: JobMessage } | { outcome: JobOutcome }> {
  const { deps, message: m } = d;
  try {
    return { msg: parseJobMessage(m.Body ?? '') };
  } catch (e) {
    const jobId = jobIdIn(m.Body);
    const reason = errorMessage(e);
    deps.log.error('invalid job message: dropped', { messageId: m.MessageId, jobId, reason });
    if (jobId) {
      try {
        await retryUntil(() => deps.store.fail(jobId, reason), { deadlineMs: 30_000, retryable: isRetryableAwsError });
      } catch (we) {
        // Could not record it: leave the message, so a later delivery records it (or the DLQ keeps it).
        deps.log.warn('could not mark the job FAILED; the message stays for a later delivery', { error: we, jobId });
        return { outcome: 'retry' };
      }
    }
    await d.deleteMessage();
    deps.metrics.emit({ JobsFailed: { value: 1, unit: 'Count' } }, { jobId, reason });
    return { outcome: 'invalid' };
  }
}

/** The job's log, its abort signal (worker stopping, ownership lost) and the heartbeat. */
function startRun(d: Delivery, msg: JobMessage): Run {
  const { deps } = d;
  const log = deps.log.child({ jobId: msg.jobId, messageId: d.message.MessageId, receiveCount: d.receiveCount });
  log.info('job received', { video: `s3://${msg.video.bucket}/${msg.video.key}`, frames: msg.frames.count, questions: msg.questions.length });
  const jobAbort = new AbortController();
  const onStop = () => jobAbort.abort(deps.stopSignal.reason ?? new JobAbandonedError('stopping', 'the worker is stopping'));
  deps.stopSignal.addEventListener('abort', onStop, { once: true });
  if (deps.stopSignal.aborted) onStop();
  const heartbeat = startHeartbeat({
    sqs: deps.sqs,
    queueUrl: deps.queueUrl,
    receiptHandle: d.message.ReceiptHandle!,
    visibilityTimeoutSeconds: deps.config.visibilityTimeoutSeconds,
    periodMs: deps.heartbeatMs,
    onLost: (why) => jobAbort.abort(new JobAbandonedError('lost-ownership', why)),
    log,
  });
  return {
    ...d,
    msg,
    log,
    signal: jobAbort.signal,
    heartbeat,
    close() {
      heartbeat.stop();
      void this.progress?.stop();
      deps.stopSignal.removeEventListener('abort', onStop);
    },
  };
}

/** 2. Claim. An unreachable table must not burn the message's deliveries: the claim is retried in place. */
async function claimJob(run: Run): Promise<ClaimResult> {
  const { store, config, workerId } = run.deps;
  const claim = await raceAbort(
    retryUntil(() => store.claim(run.msg, workerId), { deadlineMs: config.finalWriteRetrySeconds * 1000, retryable: isRetryableAwsError, signal: run.signal }),
    run.signal,
  );
  if (claim.outcome === 'claimed') {
    const token = claim.runToken;
    run.runToken = token;
    run.claimedAt = Date.now();
    run.job = claim.item;
    run.heartbeat.setLease(() => store.heartbeat(run.msg.jobId, token));
    run.progress = startProgress(run, token);
    run.log.info('job started', { attempt: claim.attempt, frames: run.msg.frames.count, questions: run.msg.questions.length });
  }
  return claim;
}

/** The job's progress reporter: stage weights from the planner's time model, writes conditional on this delivery's token. */
function startProgress(run: Run, token: string): ProgressReporter {
  const { deps, msg } = run;
  const weights = stageWeights(
    { frames: msg.frames.count, pooling: msg.settings.pooling, questions: msg.questions.map((q) => q.text), maxNewTokens: msg.settings.maxNewTokens },
    deps.timeModel?.model,
    deps.timeModel?.spec,
  );
  return createProgressReporter({
    weights,
    startedAt: run.claimedAt!,
    minIntervalMs: deps.config.progressIntervalSeconds * 1000,
    write: async (p) => {
      try {
        await deps.store.progress(msg.jobId, token, p);
      } catch (e) {
        // Progress is a courtesy to whoever watches: it never fails or slows the job.
        run.log.debug('could not record progress', { error: errorMessage(e) });
      }
    },
  });
}

/**
 * Not claimed. A finished job's copy is deleted. Otherwise the message is handed back, never
 * deleted: visible again once the owner's lease would have lapsed (a live owner finishes and the
 * copy then finds the job DONE; a dead one's job is claimed by that later delivery).
 */
async function declineDelivery(run: Run, claim: Exclude<ClaimResult, { outcome: 'claimed' }>): Promise<JobOutcome> {
  run.heartbeat.stop();
  if (claim.outcome === 'finished') {
    run.log.info(`job already ${claim.status}: duplicate delivery dropped`);
    await run.deleteMessage();
    return 'duplicate';
  }
  const delaySeconds = handBackDelaySeconds(claim, run.deps.heartbeatMs);
  run.log.info(claim.outcome === 'held' ? 'another live delivery runs this job: message handed back until its lease lapses' : 'claims kept racing: message handed back for a later try', {
    by: claim.outcome === 'held' ? claim.by : undefined,
    delaySeconds,
  });
  await run.setVisibility(delaySeconds);
  return 'handed-back';
}

/** Seconds until a declined message is visible again: past the owner's lease (plus one heartbeat), or one heartbeat after contention. */
export function handBackDelaySeconds(claim: Extract<ClaimResult, { outcome: 'held' | 'contended' }>, heartbeatMs: number, now = Date.now()): number {
  const beat = Math.ceil(heartbeatMs / 1000);
  if (claim.outcome === 'contended') return Math.max(1, beat);
  return Math.min(MAX_VISIBILITY_SECONDS, Math.max(1, Math.ceil((claim.leaseExpiresAt - now) / 1000) + beat));
}

/** 3. Frames, from the manifest the extraction wrote. */
async function loadJobFrames(run: Run): Promise<Frames> {
  const t0 = performance.now();
  const onLoaded = (done: number, total: number) => run.progress?.report('frames', done, total);
  const loaded = await raceAbort(loadFrames(run.deps.s3, run.msg, run.deps.config.frameFetchConcurrency, run.signal, onLoaded), run.signal);
  const fetchMs = performance.now() - t0;
  run.log.info('frames loaded', { frames: loaded.frames.length, ms: Math.round(fetchMs) });
  return { frames: loaded.frames, durationSeconds: loaded.manifest.durationSeconds, fetchMs };
}

/** 4. Inference, with one retry on the fallback settings after out-of-memory or a sequence over budget. */
async function runEngine(run: Run, { frames, durationSeconds }: Frames): Promise<EngineRun> {
  const { msg, log } = run;
  const answer = async (settings: InferenceSettings, indices: number[]) => {
    const onProgress = (e: { stage: 'vision' | 'prefill' | 'decode'; done: number; total: number }) => run.progress?.report(e.stage, e.done, e.total);
    const timestamps = indices.map((i) => msg.frames.timestamps[i]);
    const result = await raceAbort(
      run.deps.engine.answer({
        frames: indices.map((i) => frames[i]),
        questions: msg.questions,
        settings,
        video: { durationSeconds, timestamps },
        signal: run.signal,
        onProgress,
      }),
      run.signal,
    );
    const t = result.timings;
    log.info('inference done', {
      frameDecodeMs: Math.round(t.frameDecodeMs),
      visionMs: Math.round(t.visionMs),
      prefillMs: Math.round(t.prefillMs),
      decodeMs: Math.round(t.decodeMs),
      visualTokens: result.visualTokens,
      generatedTokens: result.answers.reduce((n, a) => n + a.generatedTokens, 0),
    });
    return { result, frameTimestamps: timestamps };
  };
  try {
    return await answer(msg.settings, frames.map((_, i) => i));
  } catch (e) {
    if (classifyFailure(e) !== 'fallback') throw e;
    const fb = fallbackFor(msg.settings, frames.length);
    if (!fb) throw new PermanentJobError(`${errorMessage(e)} (no fallback configured in settings.fallback)`);
    const fallback = `${errorMessage(e)}; retried once with ${fb.description}`;
    log.warn('retrying with the fallback settings', { fallback });
    try {
      return { ...(await answer(fb.settings, fb.frameIndices)), fallback };
    } catch (e2) {
      if (classifyFailure(e2) === 'fallback') throw new PermanentJobError(`${errorMessage(e2)} even with the fallback (${fb.description})`);
      throw e2;
    }
  }
}

/**
 * 5. Record the result: the answers, then the export, then DONE (store.complete), each write
 * conditional on this delivery's run token (the export's key is the job's own) and retried through
 * throttling and outages so the work is not lost.
 * Throws JobAbandonedError('lost-ownership') when a later delivery owns the job now.
 */
async function recordResult(run: Run, result: EngineResult, extra: { frameFetchMs: number; fallback?: string; frameTimestamps: number[] }): Promise<void> {
  const { msg, log, deps } = run;
  const token = run.runToken!;
  const modelId = deps.modelId ?? deps.engine.modelId;
  const answeredAt = new Date().toISOString();
  const byId = new Map(result.answers.map((a) => [a.questionId, a]));
  const videoUri = `s3://${msg.video.bucket}/${msg.video.key}`;
  const writeRetry = {
    deadlineMs: deps.config.finalWriteRetrySeconds * 1000,
    retryable: isRetryableAwsError,
    signal: run.signal,
    onRetry: (e: unknown, attempt: number) => log.warn('DynamoDB write failed; retrying', { error: errorMessage(e), attempt }),
  };
  const answers: (AnswerItem & { runToken: string })[] = msg.questions.map((q) => {
    const a = byId.get(q.id);
    if (!a) throw new Error(`the engine returned no answer for question ${q.id}`);
    return {
      jobId: msg.jobId,
      questionId: q.id,
      videoUri,
      question: q.text,
      answer: a.text,
      tokens: { prompt: a.promptTokens, generated: a.generatedTokens },
      latencyMs: Math.round(a.latencyMs * 1000) / 1000,
      answeredAt,
      frameTimestamps: extra.frameTimestamps,
      modelId,
      runToken: token,
    };
  });
  for (const answer of answers) {
    const ok = await retryUntil(() => deps.store.putAnswer(answer), writeRetry);
    if (!ok) throw new JobAbandonedError('lost-ownership', 'a later delivery already answered this job');
  }
  log.info('answers written', { answers: msg.questions.length });
  await run.progress?.stop();
  const totalMs = Date.now() - run.claimedAt!;
  const completion: CompletionRecord = {
    timings: {
      queueWaitMs: Math.max(0, run.claimedAt! - Date.parse(msg.enqueuedAt)),
      frameLoadMs: extra.frameFetchMs + result.timings.frameDecodeMs,
      visionMs: result.timings.visionMs,
      prefillMs: result.timings.prefillMs,
      decodeMs: result.timings.decodeMs,
      totalMs,
    },
    tokens: {
      visual: result.visualTokens,
      // The longest sequence the decoder held before generating; generated is summed over questions.
      prompt: Math.max(0, ...result.answers.map((a) => a.promptTokens)),
      generated: result.answers.reduce((s, a) => s + a.generatedTokens, 0),
    },
    ropeScale: result.ropeScale,
    ropeMode: result.ropeMode,
    poolingUsed: result.pooling,
    framesUsed: result.framesUsed,
    modelId,
    fallback: extra.fallback,
    transferBytes: result.transferBytes,
    cost: jobCost(totalMs / 1000, deps.pricing, deps.config.jobsPerWorker),
    frameSpan: { firstSeconds: Math.min(...extra.frameTimestamps), lastSeconds: Math.max(...extra.frameTimestamps) },
  };
  await exportAnswers(run, answers, completion);
  const done = await retryUntil(() => deps.store.complete(msg.jobId, token, completion), writeRetry);
  if (!done) throw new JobAbandonedError('lost-ownership', 'another delivery finished or took over the job');
}

/**
 * 5b. The answers export: one line per answer under index/ in the video's bucket, before DONE, so a
 * DONE job is in the `answers` table (a failure here retries the job like any transient error).
 */
async function exportAnswers(run: Run, answers: AnswerItem[], completion: CompletionRecord): Promise<void> {
  const { deps, msg, log } = run;
  if (!deps.config.export.enabled) return;
  const records = exportRecords({ msg, job: run.job ?? {}, answers, completion, jobsPerWorker: deps.config.jobsPerWorker });
  const key = await retryUntil(() => writeExport(deps.s3, msg.video.bucket, records), {
    deadlineMs: deps.config.finalWriteRetrySeconds * 1000,
    retryable: isRetryableAwsError,
    signal: run.signal,
    onRetry: (e: unknown, attempt: number) => log.warn('export write failed; retrying', { error: errorMessage(e), attempt }),
  });
  log.info('answers exported', { key, records: records.length });
}

/** 6. DONE is written: the message is this delivery's to delete. */
async function finishDelivery(run: Run, { result, fallback }: EngineRun): Promise<JobOutcome> {
  run.heartbeat.stop();
  await run.deleteMessage();
  const latency = Date.now() - run.receivedAt;
  run.deps.metrics.emit({ JobsDone: { value: 1, unit: 'Count' }, JobLatencyMs: { value: latency, unit: 'Milliseconds' } }, { jobId: run.msg.jobId });
  run.log.info('job done', { totalMs: Date.now() - run.claimedAt!, visualTokens: result.visualTokens, ropeScale: result.ropeScale, fallback });
  return 'done';
}

/** 7. Something went wrong: release the job for a retry, or record it FAILED (errors.ts says which). */
async function settleFailure(run: Run, e: unknown): Promise<JobOutcome> {
  run.heartbeat.stop();
  await run.progress?.stop();
  const kind = classifyFailure(e);
  if (kind === 'aborted') return abandon(run, e);
  if (kind === 'permanent' || kind === 'fallback') return failPermanently(run, errorMessage(e));
  return retryLater(run, errorMessage(e));
}

/** The worker is stopping, or another delivery owns the job now. */
async function abandon(run: Run, e: unknown): Promise<JobOutcome> {
  const { log, runToken } = run;
  const reason = errorMessage(e);
  const why = e instanceof JobAbandonedError ? e.why : 'stopping';
  if (why === 'lost-ownership' || !runToken) {
    log.warn('job abandoned', { reason });
    if (!runToken) await run.setVisibility(0);
    return runToken ? 'lost' : 'released';
  }
  await run.deps.store.release(run.msg.jobId, runToken, `released by a stopping worker (attempt ${run.receiveCount}): ${reason}`).catch((we) => log.warn('could not release the job item', { error: we }));
  await run.setVisibility(0);
  log.info('job released (worker stopping)');
  return 'released';
}

async function failPermanently(run: Run, reason: string): Promise<JobOutcome> {
  const { log, runToken, msg, deps } = run;
  log.error('job failed permanently', { reason });
  const wrote = runToken ? await retryUntil(() => deps.store.fail(msg.jobId, reason, runToken), { deadlineMs: 30_000, retryable: isRetryableAwsError }).catch(() => undefined) : undefined;
  if (wrote === undefined && runToken) return 'retry'; // could not record it: a later delivery will
  if (wrote === false) {
    // Another delivery owns the job now: its outcome stands, and the message is its to delete.
    log.warn('job failed, but another delivery owns it now: nothing written', { reason });
    return 'lost';
  }
  await run.deleteMessage();
  deps.metrics.emit({ JobsFailed: { value: 1, unit: 'Count' } }, { jobId: msg.jobId, reason });
  return 'failed';
}

/** Transient: QUEUED again with the reason, the message back after retryDelaySeconds; FAILED on the last allowed delivery. */
async function retryLater(run: Run, reason: string): Promise<JobOutcome> {
  const { log, runToken, msg, deps, receiveCount } = run;
  const { config } = deps;
  if (receiveCount >= config.maxReceiveCount) {
    const last = `failed after ${receiveCount} deliveries; last error: ${reason}`;
    log.error('job failed: last allowed delivery; the queue moves the message to the DLQ', { reason });
    // Unclaimed (the table unreachable through every delivery): only a QUEUED job is failed, so it
    // does not stay QUEUED without a reason while its message sits in the DLQ.
    await deps.store.fail(msg.jobId, last, runToken).catch((we) => log.warn('could not mark the job FAILED', { error: we }));
    // Visible at once, so the next receive moves it to the DLQ (count > maxReceiveCount).
    await run.setVisibility(0);
    deps.metrics.emit({ JobsFailed: { value: 1, unit: 'Count' } }, { jobId: msg.jobId, reason: last });
    return 'failed';
  }
  if (!runToken) {
    log.warn('could not claim the job; the message will be redelivered', { reason });
    await run.setVisibility(config.retryDelaySeconds);
    return 'retry';
  }
  log.warn('job failed; the message will be redelivered', { reason, retryInSeconds: config.retryDelaySeconds });
  await deps.store.release(msg.jobId, runToken, `attempt ${receiveCount} failed (will retry): ${reason}`).catch((we) => log.warn('could not record the failure', { error: we }));
  await run.setVisibility(config.retryDelaySeconds);
  return 'retry';
}
