/**
 * @jest-environment ./test/convert/support/onnx-environment.js
 */
/**
 * No job is left without a way forward under at-least-once delivery (issue: a delivery that found a
 * live lease used to delete the message, and with it the owner's only copy). Each scenario runs on
 * the real servers with the real engine; in each, the job ends DONE exactly once, with one set of
 * answers from the delivery that committed.
 *  1. the same message redelivered (its visibility lapsed) while the owner runs; the owner then
 *     fails transiently and gives the job back;
 *  2. the owner's heartbeat cannot extend the visibility while its lease refresh succeeds: the copy
 *     that comes back to another worker is handed back, the message is never deleted before DONE;
 *  3. the owner (a real process) SIGKILLed after another delivery met its message;
 *  4. the claim loses every conditional-write round (contention past the retry budget).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChangeMessageVisibilityCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { provisionLongsight, type LongsightResources } from '../../container/local/embedded-aws';
import { createOnnxEngine } from '../../container/runtime/onnx-engine';
import type { AnswerEngine } from '../../container/runtime/engine';
import { CLAIM_ROUNDS } from '../../container/worker/job-store';
import type { AwsClients } from '../../lib/aws-clients';
import type { JobItem } from '../../lib/contracts';
import { startLocalAws, type LocalAws } from '../support/local-aws';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy';
import { answersOf, inProcessWorker, queueDepth, waitFor, waitStatus } from './support/harness';
import { seedJob, type SeededJob } from './support/jobs';
import { spawnWorker, type WorkerChild } from './support/spawn-worker';
import { tinyModelDir } from './support/tiny-model';

jest.setTimeout(540_000);

const VISIBILITY = 4;
// Generous: a copy handed back on a slow machine costs a receive; the DLQ must not end a scenario.
const MAX_RECEIVES = 10;
let local: LocalAws;
let engine: AnswerEngine;
let modelDir: string;
let n = 0;
const children: WorkerChild[] = [];
const tmp = mkdtempSync(join(tmpdir(), 'longsight-stranding-'));

beforeAll(async () => {
  modelDir = await tinyModelDir();
  local = await startLocalAws({ visibilityTimeoutSeconds: VISIBILITY, maxReceiveCount: MAX_RECEIVES });
  engine = await createOnnxEngine({ modelDir, executionProvider: 'cpu', threads: 1 });
});
afterAll(async () => {
  for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  await engine?.close();
  await local?.stop();
});

async function fresh(): Promise<LongsightResources> {
  n++;
  return provisionLongsight(local.clients, { queue: `stranding-${n}` }, { visibilityTimeoutSeconds: VISIBILITY, maxReceiveCount: MAX_RECEIVES });
}

/** An SQS client that records what it receives and can refuse ChangeMessageVisibility (a failing heartbeat). */
function faultySqs(real: SQSClient, o: { failVisibility: () => boolean; onReceive?: (receipt: string) => void }): SQSClient {
  return {
    send: async (cmd: unknown, opts?: unknown) => {
      if (cmd instanceof ChangeMessageVisibilityCommand && o.failVisibility()) {
        throw Object.assign(new Error('connect ECONNRESET (injected)'), { name: 'TimeoutError', $metadata: {} });
      }
      const out = await (real.send as (c: unknown, o?: unknown) => Promise<unknown>)(cmd, opts);
      if (cmd instanceof ReceiveMessageCommand) for (const m of (out as { Messages?: { ReceiptHandle?: string }[] }).Messages ?? []) o.onReceive?.(m.ReceiptHandle!);
      return out;
    },
  } as unknown as SQSClient;
}

/** The real engine, held at a gate first: the test decides when the owner proceeds, and may make it fail once. */
function gated(gate: () => Promise<void>, failFirst?: Error): AnswerEngine {
  let calls = 0;
  return {
    modelId: engine.modelId,
    close: async () => undefined,
    answer: async (input) => {
      await gate();
      if (calls++ === 0 && failFirst) throw failFirst;
      return engine.answer(input);
    },
  };
}

/** DONE exactly once: one set of answers, all from the committing delivery; the message gone in the end. */
async function expectDoneOnce(r: LongsightResources, j: SeededJob, timeoutMs = 90_000): Promise<JobItem> {
  const item = await waitStatus(local.clients, r, j.jobId, ['DONE', 'FAILED'], timeoutMs);
  expect(item.status).toBe('DONE');
  const answers = await answersOf(local.clients, r, j.jobId);
  expect(answers.map((a) => a.questionId).sort()).toEqual(j.message.questions.map((q) => q.id).sort());
  for (const a of answers) expect(a.runToken).toBe(item.runToken);
  await waitFor('the message consumed', async () => {
    const d = await queueDepth(local.clients, r.queueUrl);
    return d.visible + d.inFlight === 0;
  }, timeoutMs);
  return item;
}

const until = (what: string, cond: () => boolean): Promise<void> => waitFor(what, async () => cond(), 90_000, 50).then(() => undefined);

test('1. the same message redelivered while the owner runs, the owner then failing transiently: the job is retried and ends DONE once', async () => {
  const r = await fresh();
  const j = await seedJob(local.clients, r);
  let ownerReceipt: string | undefined;
  let lapsed = false;
  // Once lapsed, the owner's visibility calls fail too (its receipt is stale once the message is received again).
  const ownerSqs = faultySqs(local.clients.sqs, { failVisibility: () => lapsed, onReceive: (h) => (ownerReceipt ??= h) });
  let other: ReturnType<typeof inProcessWorker> | undefined;
  const owner = inProcessWorker(
    { ...local.clients, sqs: ownerSqs },
    r,
    gated(() => until('the other delivery to meet the message', () => (other?.stats.handedBack ?? 0) + (other?.stats.duplicates ?? 0) > 0), new Error('transient: the GPU driver reset')),
    {},
    'owner',
  );
  try {
    await waitStatus(local.clients, r, j.jobId, ['RUNNING']);
    // The owner's visibility lapses (a pause longer than the timeout): the same message is visible again.
    lapsed = true;
    await local.clients.sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: r.queueUrl, ReceiptHandle: ownerReceipt!, VisibilityTimeout: 0 }));
    other = inProcessWorker(local.clients, r, engine, {}, 'other');
    const item = await expectDoneOnce(r, j);
    expect(item.attempts).toBe(2);
    expect(owner.stats.retried).toBe(1);
    expect(owner.stats.done + other.stats.done).toBe(1);
  } finally {
    await Promise.all([owner.stop(), other?.stop()]);
  }
});

test('2. a heartbeat whose visibility extension fails while its lease refresh succeeds: the copy is handed back, the message lives until DONE', async () => {
  const r = await fresh();
  const j = await seedJob(local.clients, r);
  let depthWhenHandedBack: { visible: number; inFlight: number } | undefined;
  let other: ReturnType<typeof inProcessWorker> | undefined;
  const owner = inProcessWorker(
    { ...local.clients, sqs: faultySqs(local.clients.sqs, { failVisibility: () => true }) },
    r,
    gated(async () => {
      await until('the redelivered copy to be handed back', () => (other?.stats.handedBack ?? 0) > 0);
      // Before the owner writes anything: the message must still exist (the old code deleted it here).
      depthWhenHandedBack = await queueDepth(local.clients, r.queueUrl);
    }),
    {},
    'owner',
  );
  try {
    await waitStatus(local.clients, r, j.jobId, ['RUNNING']);
    other = inProcessWorker(local.clients, r, engine, {}, 'other');
    const item = await expectDoneOnce(r, j);
    expect(depthWhenHandedBack!.visible + depthWhenHandedBack!.inFlight).toBe(1);
    expect(item).toMatchObject({ attempts: 1, workerId: 'owner' });
    expect(other.stats).toMatchObject({ done: 0, failed: 0 });
    expect(other.stats.handedBack).toBeGreaterThanOrEqual(1);
  } finally {
    await Promise.all([owner.stop(), other?.stop()]);
  }
});

test('3. the owner process SIGKILLed after another delivery met its message: the job is taken over and ends DONE once', async () => {
  const r = await fresh();
  const j = await seedJob(local.clients, r);
  // The owner's SQS calls go through a proxy that drops ChangeMessageVisibility: its heartbeat can
  // refresh the DynamoDB lease but not the message, which comes back to the other worker.
  const proxy: FaultProxy = await startFaultProxy(local.aws.endpoints.sqs);
  proxy.rule = (q) => (q.target.endsWith('.ChangeMessageVisibility') ? 'drop' : 'pass');
  // The SDK sends to the queue URL's host: the owner is given one naming the proxy, which the proxy
  // turns back into the server's own URL.
  const viaProxy = r.queueUrl.replace(/^http:\/\/[^/]+/, proxy.url);
  proxy.rewrite = (body) => body.split(viaProxy).join(r.queueUrl);
  const config = { waitTimeSeconds: 1, visibilityTimeoutSeconds: VISIBILITY, heartbeatSeconds: 1, retryDelaySeconds: 0, maxReceiveCount: MAX_RECEIVES, metrics: { enabled: false }, health: { file: join(tmp, `health-${n}`) } };
  const owner = spawnWorker(local.aws.env, r, modelDir, config, { TEST_ENGINE_DELAY_MS: '600000', LONGSIGHT_WORKER_ID: 'owner', AWS_ENDPOINT_URL_SQS: proxy.url, LONGSIGHT_QUEUE_URL: viaProxy });
  children.push(owner);
  let other: ReturnType<typeof inProcessWorker> | undefined;
  try {
    await owner.waitForLog(/"msg":"job started"/, 120_000);
    other = inProcessWorker(local.clients, r, engine, {}, 'other');
    await until('the other delivery to meet the message', () => other!.stats.handedBack + other!.stats.duplicates > 0);
    owner.proc.kill('SIGKILL');
    expect((await owner.exited).signal).toBe('SIGKILL');
    const item = await expectDoneOnce(r, j);
    expect(item).toMatchObject({ attempts: 2, workerId: 'other' });
    expect(other.stats.done).toBe(1);
  } finally {
    await other?.stop();
    await proxy.close();
  }
});

test('4. claim contention past the retry budget: the message is handed back, not deleted, and a later delivery claims the job', async () => {
  const r = await fresh();
  const j = await seedJob(local.clients, r);
  // Every claim write of the first delivery finds the item changed (ConditionalCheckFailed), as when
  // other writers keep touching it.
  const proxy = await startFaultProxy(local.aws.endpoints.dynamodb);
  let refused = 0;
  proxy.rule = (q) => (q.target.endsWith('.UpdateItem') && q.body.includes('SET #status = :running') && refused++ < CLAIM_ROUNDS ? 'condition-fail' : 'pass');
  const ddb = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: proxy.url }), { marshallOptions: { removeUndefinedValues: true } });
  const clients: AwsClients = { ...local.clients, ddb };
  const w = inProcessWorker(clients, r, engine, {}, 'contended');
  try {
    const item = await expectDoneOnce(r, j);
    expect(refused).toBeGreaterThanOrEqual(CLAIM_ROUNDS);
    expect(item.attempts).toBe(1);
    expect(w.stats).toMatchObject({ handedBack: 1, done: 1, failed: 0 });
  } finally {
    await w.stop();
    ddb.destroy();
    await proxy.close();
  }
});
