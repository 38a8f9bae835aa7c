/**
 * @jest-environment ./test/convert/support/onnx-environment.js
 */
/**
 * DynamoDB throttling and unavailability while the worker writes a job's result: the writes are
 * retried and nothing is lost. The real dynalite server sits behind a proxy that answers chosen
 * requests with DynamoDB's ThrottlingException or drops the connection.
 */
import { provisionLongsight, type LongsightResources } from '../../container/local/embedded-aws';
import { createOnnxEngine } from '../../container/runtime/onnx-engine';
import type { AnswerEngine } from '../../container/runtime/engine';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { AwsClients } from '../../lib/aws-clients';
import { startLocalAws, type LocalAws } from '../support/local-aws';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy';
import { answersOf, drain, inProcessWorker, queueDepth, waitFor, waitStatus } from './support/harness';
import { seedJob } from './support/jobs';
import { tinyModelDir } from './support/tiny-model';

jest.setTimeout(360_000);

let local: LocalAws;
let engine: AnswerEngine;
let proxy: FaultProxy;
let r: LongsightResources;

beforeAll(async () => {
  const dir = await tinyModelDir();
  local = await startLocalAws({ visibilityTimeoutSeconds: 4, maxReceiveCount: 3 });
  engine = await createOnnxEngine({ modelDir: dir, executionProvider: 'cpu', threads: 1 });
  proxy = await startFaultProxy(local.aws.endpoints.dynamodb);
  r = await provisionLongsight(local.clients, { queue: 'ddb-faults' }, { visibilityTimeoutSeconds: 4, maxReceiveCount: 3 });
});
afterAll(async () => {
  await proxy?.close();
  await engine?.close();
  await local?.stop();
});

/** A worker whose DynamoDB client goes through the proxy (S3 and SQS direct). */
function proxiedClients(): AwsClients {
  const ddb = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: proxy.url }), { marshallOptions: { removeUndefinedValues: true } });
  return { s3: local.clients.s3, sqs: local.clients.sqs, ddb };
}
function proxiedWorker() {
  return inProcessWorker(proxiedClients(), r, engine, { finalWriteRetrySeconds: 60 });
}

test('throttling on the DONE write: retried past the SDK retries, the job ends DONE with all answers', async () => {
  const j = await seedJob(local.clients, r);
  let throttled = 0;
  proxy.rule = (q) => {
    // The commit: UpdateItem setting status DONE. Throttle it 6 times (the SDK itself tries 3).
    if (q.target.endsWith('.UpdateItem') && q.body.includes('"DONE"') && throttled < 6) {
      throttled++;
      return 'throttle';
    }
    return 'pass';
  };
  const w = proxiedWorker();
  try {
    const item = await waitStatus(local.clients, r, j.jobId, ['DONE', 'FAILED'], 180_000);
    expect(item.status).toBe('DONE');
    expect(throttled).toBe(6);
    expect(item.attempts).toBe(1);
    const answers = await answersOf(local.clients, r, j.jobId);
    expect(answers).toHaveLength(j.message.questions.length);
    await waitFor('message deleted', async () => {
      const d = await queueDepth(local.clients, r.queueUrl);
      return d.visible + d.inFlight === 0;
    });
    expect(w.stats).toMatchObject({ done: 1, retried: 0, failed: 0 });
  } finally {
    proxy.rule = () => 'pass';
    await w.stop();
  }
});

test('DynamoDB unavailable for 3 s while the answers are written: retried, nothing lost or duplicated', async () => {
  const j = await seedJob(local.clients, r, { questions: ['First?', 'Second?', 'Third?'] });
  let downUntil = 0;
  proxy.rule = (q) => {
    if (!downUntil && q.target.endsWith('.PutItem') && q.body.includes(r.answersTable)) downUntil = Date.now() + 3000;
    return downUntil && Date.now() < downUntil ? 'drop' : 'pass';
  };
  const w = proxiedWorker();
  try {
    const item = await waitStatus(local.clients, r, j.jobId, ['DONE', 'FAILED'], 180_000);
    expect(item.status).toBe('DONE');
    expect(proxy.counts.drop).toBeGreaterThan(0);
    const answers = await answersOf(local.clients, r, j.jobId);
    expect(answers.map((a) => a.question).sort()).toEqual(['First?', 'Second?', 'Third?']);
    for (const a of answers) expect(a.runToken).toBe(item.runToken);
  } finally {
    proxy.rule = () => 'pass';
    await w.stop();
  }
});

test('DynamoDB down for longer than the retry budget: the job is given back and finishes on redelivery', async () => {
  const j = await seedJob(local.clients, r);
  let downUntil = 0;
  proxy.rule = (q) => {
    if (!downUntil && q.target.endsWith('.PutItem') && q.body.includes(r.answersTable)) downUntil = Date.now() + 4000;
    return downUntil && Date.now() < downUntil ? 'drop' : 'pass';
  };
  const w = inProcessWorker(proxiedClients(), r, engine, { finalWriteRetrySeconds: 2 });
  try {
    const item = await waitStatus(local.clients, r, j.jobId, ['DONE', 'FAILED'], 180_000);
    expect(item.status).toBe('DONE');
    expect(item.attempts).toBe(2);
    const answers = await answersOf(local.clients, r, j.jobId);
    expect(answers).toHaveLength(j.message.questions.length);
    for (const a of answers) expect(a.runToken).toBe(item.runToken);
  } finally {
    proxy.rule = () => 'pass';
    await w.stop();
  }
});

test('the job cannot be claimed on any delivery (table writes failing): after the last one it is FAILED with the reason, not left QUEUED, and the message is in the DLQ', async () => {
  // A queue of its own: a stopped worker's aborted long poll may still take (and count) a receive.
  const r = await provisionLongsight(local.clients, { queue: 'ddb-faults-claim' }, { visibilityTimeoutSeconds: 4, maxReceiveCount: 3 });
  const j = await seedJob(local.clients, r);
  // Only the claim (SET #status = :running …) fails; reads and the final FAILED write get through.
  proxy.rule = (q) => (q.target.endsWith('.UpdateItem') && q.body.includes('SET #status = :running') ? 'drop' : 'pass');
  const w = inProcessWorker(proxiedClients(), r, engine, { finalWriteRetrySeconds: 1 });
  try {
    const item = await waitStatus(local.clients, r, j.jobId, ['DONE', 'FAILED'], 180_000);
    expect(item.status).toBe('FAILED');
    expect(item.reason).toMatch(/^failed after 3 deliveries; last error: /);
    expect(item.attempts).toBe(0);
    const inDlq = await waitFor('message in the DLQ', async () => {
      const d = await drain(local.clients, r.dlqUrl);
      return d.length ? d : undefined;
    });
    expect(inDlq.map((b) => JSON.parse(b).jobId)).toEqual([j.jobId]);
    expect(w.stats).toMatchObject({ done: 0, retried: 2, failed: 1 });
  } finally {
    proxy.rule = () => 'pass';
    await w.stop();
  }
});
