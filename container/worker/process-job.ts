/**
 * One delivery of one job message, start to end, with the failure policy (see errors.ts):
 * validate → heartbeat → claim → load frames → run the engine (once more with settings.fallback
 * on out-of-memory / sequence budget) → answers → DONE → delete the message.
 */
import { performance } from 'node:perf_hooks';
import { ChangeMessageVisibilityCommand, DeleteMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import type { S3Client } from '@aws-sdk/client-s3';
import { JOB_ID_PATTERN, parseJobMessage, type InferenceSettings, type JobMessage } from '../../lib/contracts';
import type { Logger } from '../../lib/log';
import type { AnswerEngine, EngineResult } from '../runtime/engine';
import { classifyFailure, errorMessage, isRetryableAwsError, JobAbandonedError, PermanentJobError } from './errors';
import { loadFrames, uniformSubset } from './frame-loader';
import { startHeartbeat } from './heartbeat';
import type { JobStore } from './job-store';
import type { Metrics } from './metrics';
import { retryUntil } from './retry';
import type { WorkerConfig } from '../../lib/contracts';

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
}

export type JobOutcome =
  | 'done' // answers and DONE written, message deleted
  | 'failed' // FAILED written (permanent, or the last allowed delivery)
  | 'invalid' // the message broke the contract: FAILED when a job id could be read, message deleted
  | 'retry' // transient failure: QUEUED with the reason, the message comes back after retryDelaySeconds
  | 'duplicate' // the job is finished or another live delivery owns it: this copy dropped
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

export async function processMessage(deps: JobDeps, m: Message): Promise<JobOutcome> {
  const { sqs, store, config, queueUrl } = deps;
  const receiveCount = Number(m.Attributes?.ApproximateReceiveCount ?? '1');
  const receipt = m.ReceiptHandle!;
  const receivedAt = Date.now();
  const del = () =>
    retryUntil(() => sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: receipt })), {
      deadlineMs: 10_000,
      retryable: isRetryableAwsError,
    }).catch((e) => deps.log.warn('could not delete the message; a redelivery will find the job finished', { error: e, messageId: m.MessageId }));
  const setVisibility = (seconds: number) =>
    sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: receipt, VisibilityTimeout: seconds })).catch((e) => deps.log.warn('could not change message visibility', { error: e }));

  // 1. The contract. An invalid message can never succeed: FAILED (if it names a job), deleted.
  let msg: JobMessage;
  try {
    msg = parseJobMessage(m.Body ?? '');
  } catch (e) {
    const jobId = jobIdIn(m.Body);
    const reason = errorMessage(e);
    deps.log.error('invalid job message: dropped', { messageId: m.MessageId, jobId, reason });
    if (jobId) {
      try {
        await retryUntil(() => store.fail(jobId, reason), { deadlineMs: 30_000, retryable: isRetryableAwsError });
      } catch (we) {
        // Could not record it: leave the message, so a later delivery records it (or the DLQ keeps it).
        deps.log.warn('could not mark the job FAILED; the message stays for a later delivery', { error: we, jobId });
        return 'retry';
      }
    }
    await del();
    deps.metrics.emit({ JobsFailed: { value: 1, unit: 'Count' } }, { jobId, reason });
    return 'invalid';
  }

  const log = deps.log.child({ jobId: msg.jobId, messageId: m.MessageId, receiveCount });
  const jobAbort = new AbortController();
  const onStop = () => jobAbort.abort(deps.stopSignal.reason ?? new JobAbandonedError('stopping', 'the worker is stopping'));
  deps.stopSignal.addEventListener('abort', onStop, { once: true });
  if (deps.stopSignal.aborted) onStop();
  const hb = startHeartbeat({
    sqs,
    queueUrl,
    receiptHandle: receipt,
    visibilityTimeoutSeconds: config.visibilityTimeoutSeconds,
    periodMs: deps.heartbeatMs,
    onLost: (why) => jobAbort.abort(new JobAbandonedError('lost-ownership', why)),
    log,
  });
  let runToken: string | undefined;
  try {
    // 2. Claim.
    // An unreachable table must not burn the message's deliveries: retry the claim in place.
    const claim = await raceAbort(
      retryUntil(() => store.claim(msg, deps.workerId), { deadlineMs: config.finalWriteRetrySeconds * 1000, retryable: isRetryableAwsError, signal: jobAbort.signal }),
      jobAbort.signal,
    );
    if (claim.outcome !== 'claimed') {
      log.info(claim.outcome === 'finished' ? `job already ${claim.status}: duplicate delivery dropped` : 'another live delivery runs this job: duplicate dropped', {
        by: claim.outcome === 'held' ? claim.by : undefined,
      });
      hb.stop();
      await del();
      return 'duplicate';
    }
    runToken = claim.runToken;
    const token = runToken;
    hb.setLease(() => store.heartbeat(msg.jobId, token));
    const claimedAt = Date.now();
    const queueWaitMs = Math.max(0, claimedAt - Date.parse(msg.enqueuedAt));
    log.info('job started', { attempt: claim.attempt, frames: msg.frames.count, questions: msg.questions.length });

    // 3. Frames.
    const t0 = performance.now();
    const loaded = await raceAbort(loadFrames(deps.s3, msg, config.frameFetchConcurrency, jobAbort.signal), jobAbort.signal);
    const frameFetchMs = performance.now() - t0;

    // 4. Inference, with one fallback retry.
    const run = (settings: InferenceSettings, frames: Buffer[]) =>
      raceAbort(deps.engine.answer({ frames, questions: msg.questions, settings, signal: jobAbort.signal }), jobAbort.signal);
    let result: EngineResult;
    let fallback: string | undefined;
    try {
      result = await run(msg.settings, loaded.frames);
    } catch (e) {
      if (classifyFailure(e) !== 'fallback') throw e;
      const fb = fallbackFor(msg.settings, loaded.frames.length);
      if (!fb) throw new PermanentJobError(`${errorMessage(e)} (no fallback configured in settings.fallback)`);
      fallback = `${errorMessage(e)}; retried once with ${fb.description}`;
      log.warn('retrying with the fallback settings', { fallback });
      try {
        result = await run(fb.settings, fb.frameIndices.map((i) => loaded.frames[i]));
      } catch (e2) {
        if (classifyFailure(e2) === 'fallback') throw new PermanentJobError(`${errorMessage(e2)} even with the fallback (${fb.description})`);
        throw e2;
      }
    }

    // 5. Answers, then DONE: retried through throttling and outages so the work is not lost.
    const modelId = deps.modelId ?? deps.engine.modelId;
    const answeredAt = new Date().toISOString();
    const byId = new Map(result.answers.map((a) => [a.questionId, a]));
    const videoUri = `s3://${msg.video.bucket}/${msg.video.key}`;
    const writeRetry = { deadlineMs: config.finalWriteRetrySeconds * 1000, retryable: isRetryableAwsError, signal: jobAbort.signal, onRetry: (e: unknown, attempt: number) => log.warn('DynamoDB write failed; retrying', { error: errorMessage(e), attempt }) };
    for (const q of msg.questions) {
      const a = byId.get(q.id);
      if (!a) throw new Error(`the engine returned no answer for question ${q.id}`);
      const ok = await retryUntil(
        () =>
          store.putAnswer({
            jobId: msg.jobId,
            questionId: q.id,
            videoUri,
            question: q.text,
            answer: a.text,
            tokens: { prompt: a.promptTokens, generated: a.generatedTokens },
            latencyMs: Math.round(a.latencyMs * 1000) / 1000,
            answeredAt,
            modelId,
            runToken: token,
          }),
        writeRetry,
      );
      if (!ok) throw new JobAbandonedError('lost-ownership', 'a later delivery already answered this job');
    }
    const totalMs = Date.now() - claimedAt;
    const done = await retryUntil(
      () =>
        store.complete(msg.jobId, token, {
          timings: {
            queueWaitMs,
            frameLoadMs: frameFetchMs + result.timings.frameDecodeMs,
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
          fallback,
          transferBytes: result.transferBytes,
        }),
      writeRetry,
    );
    if (!done) throw new JobAbandonedError('lost-ownership', 'another delivery finished or took over the job');
    hb.stop();
    await del();
    const latency = Date.now() - receivedAt;
    deps.metrics.emit({ JobsDone: { value: 1, unit: 'Count' }, JobLatencyMs: { value: latency, unit: 'Milliseconds' } }, { jobId: msg.jobId });
    log.info('job done', { totalMs, visualTokens: result.visualTokens, ropeScale: result.ropeScale, fallback });
    return 'done';
  } catch (e) {
    hb.stop();
    const kind = classifyFailure(e);
    const reason = errorMessage(e);
    if (kind === 'aborted') {
      const why = e instanceof JobAbandonedError ? e.why : 'stopping';
      if (why === 'lost-ownership' || !runToken) {
        log.warn('job abandoned', { reason });
        if (!runToken) await setVisibility(0);
        return runToken ? 'lost' : 'released';
      }
      await store.release(msg.jobId, runToken, `released by a stopping worker (attempt ${receiveCount}): ${reason}`).catch((we) => log.warn('could not release the job item', { error: we }));
      await setVisibility(0);
      log.info('job released (worker stopping)');
      return 'released';
    }
    if (kind === 'permanent' || kind === 'fallback') {
      log.error('job failed permanently', { reason });
      const wrote = runToken
        ? await retryUntil(() => store.fail(msg.jobId, reason, runToken), { deadlineMs: 30_000, retryable: isRetryableAwsError }).catch(() => undefined)
        : undefined;
      if (wrote === undefined && runToken) return 'retry'; // could not record it: a later delivery will
      if (wrote === false) {
        // Another delivery owns the job now: its outcome stands, and the message is its to delete.
        log.warn('job failed, but another delivery owns it now: nothing written', { reason });
        return 'lost';
      }
      await del();
      deps.metrics.emit({ JobsFailed: { value: 1, unit: 'Count' } }, { jobId: msg.jobId, reason });
      return 'failed';
    }
    // Transient.
    if (receiveCount >= config.maxReceiveCount) {
      const last = `failed after ${receiveCount} deliveries; last error: ${reason}`;
      log.error('job failed: last allowed delivery; the queue moves the message to the DLQ', { reason });
      // Unclaimed (the table unreachable through every delivery): only a QUEUED job is failed, so it
      // does not stay QUEUED without a reason while its message sits in the DLQ.
      await store.fail(msg.jobId, last, runToken).catch((we) => log.warn('could not mark the job FAILED', { error: we }));
      // Visible at once, so the next receive moves it to the DLQ (count > maxReceiveCount).
      await setVisibility(0);
      deps.metrics.emit({ JobsFailed: { value: 1, unit: 'Count' } }, { jobId: msg.jobId, reason: last });
      return 'failed';
    }
    if (!runToken) {
      log.warn('could not claim the job; the message will be redelivered', { reason });
      await setVisibility(config.retryDelaySeconds);
      return 'retry';
    }
    log.warn('job failed; the message will be redelivered', { reason, retryInSeconds: config.retryDelaySeconds });
    await store.release(msg.jobId, runToken, `attempt ${receiveCount} failed (will retry): ${reason}`).catch((we) => log.warn('could not record the failure', { error: we }));
    await setVisibility(config.retryDelaySeconds);
    return 'retry';
  } finally {
    hb.stop();
    deps.stopSignal.removeEventListener('abort', onStop);
  }
}
