/**
 * Keeps a running job's message invisible (ChangeMessageVisibility on a timer) and its DynamoDB
 * lease fresh. The DynamoDB lease is the authority: when it says another delivery owns the job now,
 * the heartbeat stops and reports the job abandoned. A failed SQS extension is only logged: the
 * message may come back to another worker, which then sees the live lease and hands the message
 * back until the lease would lapse (process-job.ts), never deleting it.
 */
import { ChangeMessageVisibilityCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Logger } from '../../lib/log';

export interface HeartbeatOptions {
  sqs: SQSClient;
  queueUrl: string;
  receiptHandle: string;
  visibilityTimeoutSeconds: number;
  periodMs: number;
  /** Refreshes the job's lease; resolves false when this delivery no longer owns the job. Absent before the claim. */
  lease?: () => Promise<boolean>;
  onLost: (why: string) => void;
  log: Logger;
}

export interface Heartbeat {
  /** Sets the lease check once the job is claimed. */
  setLease(lease: () => Promise<boolean>): void;
  stop(): void;
}

export function startHeartbeat(o: HeartbeatOptions): Heartbeat {
  let lease = o.lease;
  let stopped = false;
  let busy = false;
  const tick = async () => {
    if (stopped || busy) return;
    busy = true;
    try {
      try {
        await o.sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: o.queueUrl, ReceiptHandle: o.receiptHandle, VisibilityTimeout: o.visibilityTimeoutSeconds }));
      } catch (e) {
        o.log.warn('could not extend message visibility', { error: e });
      }
      if (lease && !stopped) {
        try {
          if (!(await lease())) {
            if (!stopped) {
              stopped = true;
              clearInterval(timer);
              o.onLost('another delivery owns the job now (lease lost)');
            }
            return;
          }
        } catch (e) {
          o.log.warn('could not refresh the job lease', { error: e });
        }
      }
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void tick(), o.periodMs);
  timer.unref();
  return {
    setLease(l) {
      lease = l;
    },
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}
