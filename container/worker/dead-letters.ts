/**
 * The dead-letter reconciler. When the worker process dies mid-job on every delivery (killed for
 * out of memory, SIGKILL, a native crash), no code of ours runs on the last one: SQS moves the
 * message to the DLQ and the job item would stay RUNNING forever, with no reason. Each pass (the
 * scheduled reconciler, or a live worker) reads the whole DLQ and marks each such job FAILED, with
 * the same conditional-write discipline as the rest of job-store.ts. It never deletes a message, so
 * `longsight requeue-dlq` still finds them all.
 *
 * Complete, and bounded: long polls (a short poll on SQS samples a subset of its servers) with a
 * visibility of `holdSeconds`, so each receive returns messages not yet read in this pass, until
 * the DLQ answers empty or `maxMessages` were read. A pass that read the whole DLQ makes the
 * messages visible again at once (for requeue-dlq); one that stopped at the bound leaves them
 * hidden for holdSeconds (longer than the time to the next pass), so the next pass reads the next
 * ones. A pass that dies midway leaves them hidden for holdSeconds at most. Never a DeleteMessage.
 */
import { ChangeMessageVisibilityBatchCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { TERMINAL_STATUSES, WORKER_METRICS, type JobItem } from '../../lib/contracts';
import type { Logger } from '../../lib/log';
import type { JobStore } from './job-store';
import type { Metrics } from './metrics';
import { mapLimit } from '../../lib/map-limit';
import { startPeriodic, type Periodic } from '../../lib/periodic';
import { jobIdIn } from './process-job';

export interface DeadLetterDeps {
  sqs: SQSClient;
  dlqUrl: string;
  store: JobStore;
  log: Logger;
  metrics: Metrics;
}

export interface SweepResult {
  /** Distinct jobs named by the DLQ messages looked at. */
  seen: number;
  /** Jobs this sweep marked FAILED. */
  failed: number;
  /** Dead letters read. */
  read: number;
  /** Whether the pass read the whole DLQ (false: it stopped at maxMessages; the next pass goes on). */
  complete: boolean;
}

export interface SweepOptions {
  /** Dead letters read per pass at most (default 1000). */
  maxMessages?: number;
  /** How long the messages read stay hidden (default 60 s). */
  holdSeconds?: number;
  /** Long-poll wait per receive (default 1 s; 0 only against servers without sampling). */
  waitSeconds?: number;
  /** Jobs reconciled at once (default 8). */
  concurrency?: number;
}

/** The reason recorded on a dead-lettered job, in words a person understands. */
export function deadLetterReason(item: Partial<JobItem>): string {
  const n = item.attempts ?? 0;
  const head = `dead-lettered after ${n} ${n === 1 ? 'delivery' : 'deliveries'}`;
  // RUNNING: the last delivery claimed the job and never wrote again, so its process died.
  const how = item.status === 'RUNNING' ? '; the worker stopped during the job (crash, kill or out of memory)' : '';
  const last = item.reason ? `; last recorded error: ${item.reason}` : how ? '' : '; the job never finished';
  return `${head}${how}${last}`.slice(0, 2000);
}

/** One pass over the DLQ: marks FAILED each job that is neither finished nor fresh (job-store's lease). */
export async function sweepDeadLetters(d: DeadLetterDeps, o: SweepOptions = {}): Promise<SweepResult> {
  const read = await readDeadLetters(d, o);
  const outcomes = await mapLimit([...read.jobIds], o.concurrency ?? 8, (jobId) => reconcileDeadLetter(d, jobId));
  if (!read.bounded) await showAgain(d, read.receipts);
  return { seen: read.jobIds.size, failed: outcomes.filter(Boolean).length, read: read.receipts.length, complete: !read.bounded };
}

/** Makes the messages read visible again (best effort: otherwise they reappear after the hold). */
async function showAgain(d: DeadLetterDeps, receipts: string[]): Promise<void> {
  for (let i = 0; i < receipts.length; i += 10) {
    const entries = receipts.slice(i, i + 10).map((h, k) => ({ Id: String(k), ReceiptHandle: h, VisibilityTimeout: 0 }));
    await d.sqs.send(new ChangeMessageVisibilityBatchCommand({ QueueUrl: d.dlqUrl, Entries: entries })).catch((e) => d.log.warn('could not show dead letters again; they reappear after the hold', { error: e }));
  }
}

/** The distinct job ids named by the dead letters, reading each message once per pass. */
async function readDeadLetters(d: DeadLetterDeps, o: SweepOptions): Promise<{ jobIds: Set<string>; receipts: string[]; bounded: boolean }> {
  const max = o.maxMessages ?? 1000;
  const seenMessages = new Set<string>();
  const jobIds = new Set<string>();
  const receipts: string[] = [];
  for (;;) {
    if (seenMessages.size >= max) return { jobIds, receipts, bounded: true };
    const r = await d.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: d.dlqUrl,
        MaxNumberOfMessages: Math.min(10, max - seenMessages.size),
        WaitTimeSeconds: o.waitSeconds ?? 1,
        VisibilityTimeout: o.holdSeconds ?? 60,
      }),
    );
    const fresh = (r.Messages ?? []).filter((m) => m.MessageId && !seenMessages.has(m.MessageId));
    if (fresh.length === 0) return { jobIds, receipts, bounded: false };
    for (const m of fresh) {
      seenMessages.add(m.MessageId!);
      receipts.push(m.ReceiptHandle!);
      // Lenient: any body naming a valid job id counts; anything else is left for a person (requeue-dlq reports it).
      const jobId = jobIdIn(m.Body);
      if (jobId) jobIds.add(jobId);
    }
  }
}

/** True when this call marked the job FAILED. */
async function reconcileDeadLetter(d: DeadLetterDeps, jobId: string): Promise<boolean> {
  try {
    const item = await d.store.get(jobId);
    if (!item?.status || TERMINAL_STATUSES.includes(item.status) || d.store.isFresh(item)) return false;
    const reason = deadLetterReason(item);
    // Otherwise someone wrote the item since it was read (a live worker, a requeue): theirs wins.
    if (!(await d.store.failAsRead({ ...item, jobId }, reason))) return false;
    d.log.error('dead-lettered job marked FAILED', { jobId, previousStatus: item.status, attempts: item.attempts, reason });
    d.metrics.emit({ [WORKER_METRICS.jobsFailed]: { value: 1, unit: 'Count' } }, { jobId, reason });
    return true;
  } catch (e) {
    d.log.warn('could not reconcile a dead-lettered job; next sweep retries', { jobId, error: e });
    return false;
  }
}

/** Sweeps at start, then every `everyMs`, until stopped. Failures are logged, never thrown. */
export function startDeadLetterSweeper(d: DeadLetterDeps, everyMs: number): Periodic {
  // Held past the next pass: a DLQ larger than one pass's bound is read in turn, not resampled.
  const options: SweepOptions = { holdSeconds: Math.ceil(everyMs / 1000) + 30 };
  return startPeriodic(
    async () => {
      const r = await sweepDeadLetters(d, options);
      if (r.failed > 0) d.log.info('dead-letter sweep', { ...r });
    },
    everyMs,
    (e) => d.log.warn('dead-letter sweep failed; next sweep retries', { error: e }),
  );
}
