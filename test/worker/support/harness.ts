/** Worker test harness: embedded AWS, the real ONNX engine on the tiny model, in-process workers. */
import { GetQueueAttributesCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { parseWorkerConfig, type AnswerItem, type JobItem, type WorkerConfigInput } from '../../../lib/contracts';
import { createLogger } from '../../../lib/log';
import type { AwsClients } from '../../../lib/aws-clients';
import type { AnswerEngine } from '../../../container/runtime/engine';
import { createEmfMetrics } from '../../../container/worker/metrics';
import { startWorker, type RunningWorker, type WorkerOptions } from '../../../container/worker/worker';
import type { LongsightResources } from '../../../container/local/embedded-aws';
import { answersOfJob, getJob } from '../../../container/local/job-queries';

export const FAST_CONFIG: WorkerConfigInput = {
  jobsPerWorker: 1,
  waitTimeSeconds: 1,
  visibilityTimeoutSeconds: 4,
  heartbeatSeconds: 1,
  retryDelaySeconds: 0,
  stopTimeoutSeconds: 10,
  finalWriteRetrySeconds: 30,
  model: { executionProvider: 'cpu', threads: 1 },
  metrics: { enabled: true },
};

export function inProcessWorker(
  clients: AwsClients,
  r: LongsightResources,
  engine: AnswerEngine,
  over: WorkerConfigInput = {},
  name = 'w1',
  options: Partial<WorkerOptions> = {},
): RunningWorker & { metricLines: string[] } {
  const metricLines: string[] = [];
  const config = parseWorkerConfig({ ...FAST_CONFIG, ...over });
  const w = startWorker({
    clients,
    engine,
    config,
    queueUrl: r.queueUrl,
    jobsTable: r.jobsTable,
    answersTable: r.answersTable,
    workerId: name,
    log: createLogger({ service: 'test-worker', workerId: name }),
    metrics: createEmfMetrics(config.metrics.namespace, config.metrics.dimensions, true, (l) => metricLines.push(l)),
    ...options,
  });
  return Object.assign(w, { metricLines });
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 120_000, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((res) => setTimeout(res, everyMs));
  }
}

export function jobItem(clients: AwsClients, r: LongsightResources, jobId: string): Promise<JobItem | undefined> {
  return getJob(clients.ddb, r.jobsTable, jobId);
}

export function answersOf(clients: AwsClients, r: LongsightResources, jobId: string): Promise<AnswerItem[]> {
  return answersOfJob(clients.ddb, r.answersTable, jobId);
}

export async function waitStatus(clients: AwsClients, r: LongsightResources, jobId: string, status: string[], timeoutMs = 120_000): Promise<JobItem> {
  return waitFor(`job ${jobId} to be ${status.join('|')}`, async () => {
    const it = await jobItem(clients, r, jobId);
    return it && status.includes(it.status) ? it : undefined;
  }, timeoutMs);
}

export async function queueDepth(clients: AwsClients, queueUrl: string): Promise<{ visible: number; inFlight: number }> {
  const a = await clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }));
  return { visible: Number(a.Attributes?.ApproximateNumberOfMessages ?? 0), inFlight: Number(a.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0) };
}

export async function drain(clients: AwsClients, queueUrl: string): Promise<string[]> {
  const bodies: string[] = [];
  for (;;) {
    const r = await clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
    if (!r.Messages?.length) return bodies;
    bodies.push(...r.Messages.map((m) => m.Body ?? ''));
  }
}

/** The real engine with a pause before each job: stretches a job so a test can act while it runs. */
export function slowed(engine: AnswerEngine, delayMs: number): AnswerEngine {
  return {
    modelId: engine.modelId,
    close: () => engine.close(),
    answer: async (input) => {
      await new Promise<void>((res, rej) => {
        const onAbort = () => {
          clearTimeout(t);
          rej(input.signal!.reason);
        };
        const t = setTimeout(() => {
          input.signal?.removeEventListener('abort', onAbort);
          res();
        }, delayMs);
        input.signal?.addEventListener('abort', onAbort, { once: true });
      });
      return engine.answer(input);
    },
  };
}
