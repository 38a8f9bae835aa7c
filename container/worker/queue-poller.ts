/**
 * Long-polls the job queue and hands each message to `handle`, never holding more than
 * `concurrency` jobs at once (one per GPU by default). Stops taking messages when stopped.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ChangeMessageVisibilityCommand, ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import type { Logger } from '../../lib/log';

export interface PollerOptions {
  sqs: SQSClient;
  queueUrl: string;
  concurrency: number;
  waitTimeSeconds: number;
  visibilityTimeoutSeconds: number;
  handle: (m: Message) => Promise<unknown>;
  log: Logger;
}

export interface Poller {
  /** Resolves when stopped and every job it started has settled. */
  readonly done: Promise<void>;
  readonly inFlight: number;
  stop(): void;
}

export function startPoller(o: PollerOptions): Poller {
  const inFlight = new Set<Promise<unknown>>();
  const stopCtl = new AbortController();
  let slotFreed: (() => void) | undefined;

  const launch = (m: Message) => {
    const p = o
      .handle(m)
      .catch((e) => o.log.error('job handler threw', { error: e, messageId: m.MessageId }))
      .finally(() => {
        inFlight.delete(p);
        slotFreed?.();
      });
    inFlight.add(p);
  };

  const loop = async () => {
    let backoffMs = 500;
    while (!stopCtl.signal.aborted) {
      if (inFlight.size >= o.concurrency) {
        // One listener per wait, removed after it: a worker runs thousands of jobs on one signal.
        const onAbort = () => slotFreed?.();
        await new Promise<void>((resolve) => {
          slotFreed = resolve;
          stopCtl.signal.addEventListener('abort', onAbort, { once: true });
        });
        stopCtl.signal.removeEventListener('abort', onAbort);
        slotFreed = undefined;
        continue;
      }
      let messages: Message[] = [];
      try {
        const r = await o.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: o.queueUrl,
            MaxNumberOfMessages: Math.min(10, o.concurrency - inFlight.size),
            WaitTimeSeconds: o.waitTimeSeconds,
            VisibilityTimeout: o.visibilityTimeoutSeconds,
            MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
          }),
          // Not aborted on stop: the server would still complete an abandoned long poll and hide what
          // it took for the whole visibility timeout. The poll ends within waitTimeSeconds, and what
          // it brings is given back below.
        );
        messages = r.Messages ?? [];
        backoffMs = 500;
      } catch (e) {
        if (stopCtl.signal.aborted) break;
        o.log.warn('receive failed; backing off', { error: e, backoffMs });
        await sleep(backoffMs, undefined, { signal: stopCtl.signal }).catch(() => undefined);
        backoffMs = Math.min(backoffMs * 2, 30_000);
        continue;
      }
      for (const m of messages) {
        if (stopCtl.signal.aborted) {
          // Received while stopping: give it straight back.
          await o.sqs
            .send(new ChangeMessageVisibilityCommand({ QueueUrl: o.queueUrl, ReceiptHandle: m.ReceiptHandle!, VisibilityTimeout: 0 }))
            .catch(() => undefined);
          continue;
        }
        launch(m);
      }
    }
    while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
  };

  const done = loop();
  return {
    done,
    get inFlight() {
      return inFlight.size;
    },
    stop() {
      stopCtl.abort();
    },
  };
}
