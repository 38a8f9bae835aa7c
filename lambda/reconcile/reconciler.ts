/**
 * The reconciler: gives every unfinished job a way forward without depending on workers (they
 * scale to zero). Run on a schedule (the `reconcile` Lambda, EventBridge) and in-process by the
 * local pipeline. One pass:
 *  1. jobs QUEUED or RUNNING whose item has not moved for `staleAfterMs` (the byStatus index,
 *     then a consistent read): their lease expired long ago and no delivery has taken them since,
 *     so their message is gone (deleted by a bug, expired, lost between two writes). Each is
 *     re-queued with a new message (the item updated only if it is still exactly as read, then the
 *     message sent), or, past the attempt budget, marked FAILED with a reason. A QUEUED job is left
 *     alone while the job queue has a visible backlog: its message may be waiting there.
 *  2. jobs whose extraction never finished (QUEUED, never enqueued, the extraction lease lapsed
 *     longer ago than Lambda retries an S3 event): re-sent when the frames were recorded, otherwise
 *     FAILED (the S3 event is in the extraction's failed-events queue for a replay).
 *  3. the dead-letter queue, read whole (dead-letters.ts).
 * A duplicate message is harmless (claims are conditional, a finished job's copy is dropped); a
 * lost one would strand the job: when in doubt the reconciler sends.
 */
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import {
  FrameManifestSchema,
  framesRefFromManifest,
  JOB_MESSAGE_SCHEMA_VERSION,
  JOBS_TABLE_KEYS,
  parseOrThrow,
  serializeJobMessage,
  WORKER_METRICS,
  type JobItem,
} from '../../lib/contracts';
import type { Logger } from '../../lib/log';
import { mapLimit } from '../../lib/map-limit';
import { startPeriodic, type Periodic } from '../../lib/periodic';
import { sweepDeadLetters, type SweepResult } from '../../container/worker/dead-letters';
import type { JobStore } from '../../container/worker/job-store';
import type { Metrics } from '../../container/worker/metrics';

export interface ReconcilerSettings {
  /** An unfinished job whose item has not changed for this long has lost its message. */
  staleAfterMs: number;
  /** How long after its extraction lease lapsed a never-enqueued job is given up on (Lambda's retries are over). */
  extractionGiveUpMs: number;
  /** Claims plus re-sends after which a stranded job is FAILED instead of re-sent. */
  maxAttempts: number;
  /** Jobs looked at per status per pass (the rest wait for the next pass). */
  maxJobsPerPass: number;
  /** Dead letters read per pass. */
  maxDeadLettersPerPass: number;
  /** How long the dead letters read stay hidden when a pass stops at its bound (past the next pass). */
  deadLetterHoldSeconds: number;
}

export interface ReconcilerDeps {
  ddb: DynamoDBDocumentClient;
  sqs: SQSClient;
  s3: S3Client;
  store: JobStore;
  jobsTable: string;
  queueUrl: string;
  dlqUrl?: string;
  settings: ReconcilerSettings;
  log: Logger;
  metrics: Metrics;
  now?: () => Date;
}

export type Verdict = { action: 'leave'; why: string } | { action: 'resend'; why: string } | { action: 'fail'; reason: string };

export interface PassResult {
  looked: number;
  resent: string[];
  failed: string[];
  deadLetters?: SweepResult;
}

/** Pure: what to do with one unfinished job, read consistently. */
export function judgeJob(item: Partial<JobItem>, ctx: { now: number; settings: ReconcilerSettings; queueBacklog: boolean }): Verdict {
  const { now, settings } = ctx;
  if (item.status !== 'QUEUED' && item.status !== 'RUNNING') return { action: 'leave', why: `status ${item.status}` };
  const age = now - Date.parse(item.updatedAt ?? '');
  if (item.status === 'QUEUED' && !item.enqueuedAt) {
    // The extraction never sent the message: Lambda may still be retrying the S3 event.
    const leaseEnd = item.extractLease ? Date.parse(item.extractLease.until) : Date.parse(item.updatedAt ?? '');
    if (now - leaseEnd < settings.extractionGiveUpMs) return { action: 'leave', why: 'extraction may still be retried' };
    if (item.frames?.manifestKey) return { action: 'resend', why: 'the extraction wrote the frames but never sent the job message' };
    return {
      action: 'fail',
      reason: 'extraction never finished: the extraction Lambda failed on this upload through all its retries (its S3 event is kept in the failed-events queue for a replay)',
    };
  }
  if (!(age >= settings.staleAfterMs)) return { action: 'leave', why: 'recently updated' };
  if (item.status === 'QUEUED' && ctx.queueBacklog) return { action: 'leave', why: 'its message may be waiting in the queue backlog' };
  const attempts = item.attempts ?? 0;
  const resends = item.resends ?? 0;
  if (attempts + resends >= settings.maxAttempts) {
    const minutes = Math.round(age / 60_000);
    const last = item.reason ? `; last recorded error: ${item.reason}` : '';
    return {
      action: 'fail',
      reason: `stranded: ${item.status} with no live delivery for ${minutes} min after ${attempts} ${attempts === 1 ? 'attempt' : 'attempts'} and ${resends} re-sent ${resends === 1 ? 'message' : 'messages'}${last}`.slice(0, 2000),
    };
  }
  return { action: 'resend', why: `${item.status} with no live delivery for ${Math.round(age / 1000)} s (its message was lost)` };
}

/** One reconciliation pass; failures on one job are logged and left for the next pass. */
export async function reconcileOnce(d: ReconcilerDeps): Promise<PassResult> {
  const now = (d.now ?? (() => new Date()))().getTime();
  const queueBacklog = await hasBacklog(d);
  const result: PassResult = { looked: 0, resent: [], failed: [] };
  for (const status of ['QUEUED', 'RUNNING'] as const) {
    // Anything not updated within the shortest threshold is a candidate; judgeJob decides.
    const before = new Date(now - Math.min(d.settings.staleAfterMs, d.settings.extractionGiveUpMs)).toISOString();
    const ids = await idsNotUpdatedSince(d, status, before);
    result.looked += ids.length;
    await mapLimit(ids, 8, async (jobId) => {
      try {
        const outcome = await reconcileJob(d, jobId, now, queueBacklog);
        if (outcome === 'resent') result.resent.push(jobId);
        if (outcome === 'failed') result.failed.push(jobId);
      } catch (e) {
        d.log.warn('could not reconcile a job; the next pass retries', { jobId, error: e });
      }
    });
  }
  if (d.dlqUrl) {
    result.deadLetters = await sweepDeadLetters(
      { sqs: d.sqs, dlqUrl: d.dlqUrl, store: d.store, log: d.log, metrics: d.metrics },
      { maxMessages: d.settings.maxDeadLettersPerPass, holdSeconds: d.settings.deadLetterHoldSeconds },
    );
  }
  if (result.resent.length || result.failed.length || result.deadLetters?.failed) d.log.info('reconciler pass', { looked: result.looked, resent: result.resent.length, failed: result.failed.length, deadLetters: result.deadLetters });
  return result;
}

async function reconcileJob(d: ReconcilerDeps, jobId: string, now: number, queueBacklog: boolean): Promise<'resent' | 'failed' | 'left'> {
  const item = await d.store.get(jobId);
  if (!item) return 'left';
  const verdict = judgeJob(item, { now, settings: d.settings, queueBacklog });
  if (verdict.action === 'leave') return 'left';
  const seen = { ...item, jobId };
  if (verdict.action === 'fail') return (await failJob(d, seen, verdict.reason)) ? 'failed' : 'left';
  let body: string;
  try {
    body = await messageFor(d, seen);
  } catch (e) {
    return (await failJob(d, seen, `stranded, and its job message cannot be rebuilt: ${(e as Error).message}`)) ? 'failed' : 'left';
  }
  // The item first, conditional on what was read (a worker or a requeue acting now wins), then the
  // message: a crash between the two leaves a QUEUED job the next stale pass re-sends again.
  if (!(await d.store.requeueAsRead(seen, `re-queued by the reconciler: ${verdict.why}`))) return 'left';
  await d.sqs.send(new SendMessageCommand({ QueueUrl: d.queueUrl, MessageBody: body }));
  d.log.warn('stranded job re-queued', { jobId, previousStatus: item.status, attempts: item.attempts, resends: (item.resends ?? 0) + 1, why: verdict.why });
  return 'resent';
}

async function failJob(d: ReconcilerDeps, seen: Partial<JobItem> & { jobId: string }, reason: string): Promise<boolean> {
  if (!(await d.store.failAsRead(seen, reason))) return false;
  d.log.error('stranded job marked FAILED', { jobId: seen.jobId, previousStatus: seen.status, reason });
  d.metrics.emit({ [WORKER_METRICS.jobsFailed]: { value: 1, unit: 'Count' } }, { jobId: seen.jobId, reason });
  return true;
}

/** The job message again, from the item and the frame manifest the extraction wrote. */
async function messageFor(d: ReconcilerDeps, item: Partial<JobItem> & { jobId: string }): Promise<string> {
  if (!item.frames?.manifestKey || !item.video || !item.questions || !item.settings) throw new Error('the job item has no frames, questions or settings recorded');
  const bucket = item.video.bucket;
  const r = await d.s3.send(new GetObjectCommand({ Bucket: bucket, Key: item.frames.manifestKey }));
  const manifest = parseOrThrow(FrameManifestSchema, JSON.parse(await r.Body!.transformToString('utf8')), 'frame manifest');
  return serializeJobMessage({
    schemaVersion: JOB_MESSAGE_SCHEMA_VERSION,
    kind: 'extracted',
    jobId: item.jobId,
    ...(item.profile ? { profile: item.profile } : {}),
    video: item.video,
    frames: framesRefFromManifest(bucket, item.frames.manifestKey, manifest),
    questions: item.questions,
    settings: item.settings,
    enqueuedAt: new Date().toISOString(),
  });
}

/** Jobs in `status` whose updatedAt is before `before`, oldest first, at most maxJobsPerPass. */
async function idsNotUpdatedSince(d: ReconcilerDeps, status: 'QUEUED' | 'RUNNING', before: string): Promise<string[]> {
  const { indexName, partitionKey, sortKey } = JOBS_TABLE_KEYS.byStatus;
  const ids: string[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const r = await d.ddb.send(
      new QueryCommand({
        TableName: d.jobsTable,
        IndexName: indexName,
        KeyConditionExpression: '#pk = :status AND #sk < :before',
        ExpressionAttributeNames: { '#pk': partitionKey, '#sk': sortKey },
        ExpressionAttributeValues: { ':status': status, ':before': before },
        ExclusiveStartKey: start,
        Limit: Math.min(100, d.settings.maxJobsPerPass - ids.length),
      }),
    );
    for (const it of r.Items ?? []) ids.push(String(it.jobId));
    start = r.LastEvaluatedKey;
  } while (start && ids.length < d.settings.maxJobsPerPass);
  return ids;
}

/** Whether the job queue holds messages waiting to be received (visible or delayed). */
async function hasBacklog(d: ReconcilerDeps): Promise<boolean> {
  const a = await d.sqs.send(new GetQueueAttributesCommand({ QueueUrl: d.queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesDelayed'] }));
  return Number(a.Attributes?.ApproximateNumberOfMessages ?? 0) + Number(a.Attributes?.ApproximateNumberOfMessagesDelayed ?? 0) > 0;
}

/** Runs a pass at start, then every `everyMs`, until stopped (the local pipeline's in-process schedule). */
export function startReconciler(d: ReconcilerDeps, everyMs: number): Periodic {
  return startPeriodic(() => reconcileOnce(d), everyMs, (e) => d.log.warn('reconciler pass failed; the next pass retries', { error: e }));
}
