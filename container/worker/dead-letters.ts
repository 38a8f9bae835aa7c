/**
 * The dead-letter reconciler. When the worker process dies mid-job on every delivery (killed for
 * out of memory, SIGKILL, a native crash), no code of ours runs on the last one: SQS moves the
 * message to the DLQ and the job item would stay RUNNING forever, with no reason. Now and then a
 * live worker peeks at the DLQ (ReceiveMessage with VisibilityTimeout 0: the messages stay there and
 * stay visible, so `longsight requeue-dlq` still finds them; this never deletes one) and marks each
 * such job FAILED, with the same conditional-write discipline as the rest of job-store.ts.
 */
import { ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { TERMINAL_STATUSES, WORKER_METRICS, type JobItem } from '../../lib/contracts';
import type { Logger } from '../../lib/log';
import type { JobStore } from './job-store';
import type { Metrics } from './metrics';
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
}

/** Receive calls per sweep: a peek returns up to 10 messages (a sample, on SQS), and they stay visible. */
const MAX_BATCHES = 10;

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
export async function sweepDeadLetters(d: DeadLetterDeps): Promise<SweepResult> {
  const seenMessages = new Set<string>();
  const jobIds = new Set<string>();
  for (let batch = 0; batch < MAX_BATCHES; batch++) {
    const r = await d.sqs.send(new ReceiveMessageCommand({ QueueUrl: d.dlqUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 0 }));
    const fresh = (r.Messages ?? []).filter((m) => m.MessageId && !seenMessages.has(m.MessageId));
    if (fresh.length === 0) break;
    for (const m of fresh) {
      seenMessages.add(m.MessageId!);
      // Lenient: any body naming a valid job id counts; anything else is left for a person (requeue-dlq reports it).
      const jobId = jobIdIn(m.Body);
      if (jobId) jobIds.add(jobId);
    }
  }
  let failed = 0;
  for (const jobId of jobIds) {
    try {
      const item = await d.store.get(jobId);
      if (!item?.status || TERMINAL_STATUSES.includes(item.status) || d.store.isFresh(item)) continue;
      const reason = deadLetterReason(item);
      if (await d.store.failAsRead({ ...item, jobId }, reason)) {
        failed++;
        d.log.error('dead-lettered job marked FAILED', { jobId, previousStatus: item.status, attempts: item.attempts, reason });
        d.metrics.emit({ [WORKER_METRICS.jobsFailed]: { value: 1, unit: 'Count' } }, { jobId, reason });
      }
      // Otherwise someone wrote the item since it was read (a live worker, a requeue): theirs wins.
    } catch (e) {
      d.log.warn('could not reconcile a dead-lettered job; next sweep retries', { jobId, error: e });
    }
  }
  return { seen: jobIds.size, failed };
}

export interface DeadLetterSweeper {
  /** Stops the timer; resolves once a sweep under way has finished. */
  stop(): Promise<void>;
}

/** Sweeps at start, then every `everyMs`, until stopped. Failures are logged, never thrown. */
export function startDeadLetterSweeper(d: DeadLetterDeps, everyMs: number): DeadLetterSweeper {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const tick = () => {
    running = sweepDeadLetters(d)
      .then((r) => {
        if (r.failed > 0) d.log.info('dead-letter sweep', { ...r });
      })
      .catch((e) => d.log.warn('dead-letter sweep failed; next sweep retries', { error: e }))
      .finally(() => {
        if (!stopped) {
          timer = setTimeout(tick, everyMs);
          // Never keeps the process alive on its own.
          timer.unref();
        }
      });
  };
  tick();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
