/**
 * @jest-environment ./test/convert/support/onnx-environment.js
 */
/**
 * The worker against real parts: embedded S3/SQS/DynamoDB servers on loopback and the real ONNX
 * engine on the tiny converted checkpoint, workers running in this process. Process-level faults
 * (SIGKILL, SIGTERM) are in worker-process.test.ts.
 */
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { provisionLongsight, type LongsightResources } from '../../container/local/embedded-aws';
import { createOnnxEngine } from '../../container/runtime/onnx-engine';
import { SequenceBudgetError, type AnswerEngine } from '../../container/runtime/engine';
import { startLocalAws, type LocalAws } from '../support/local-aws';
import { answersOf, drain, inProcessWorker, jobItem, queueDepth, slowed, waitFor, waitStatus } from './support/harness';
import { seedJob } from './support/jobs';
import { tinyModelDir } from './support/tiny-model';

jest.setTimeout(360_000);

let local: LocalAws;
let engine: AnswerEngine;
let queueNo = 0;

beforeAll(async () => {
  const dir = await tinyModelDir();
  local = await startLocalAws({ visibilityTimeoutSeconds: 4, maxReceiveCount: 3 });
  engine = await createOnnxEngine({ modelDir: dir, executionProvider: 'cpu', threads: 1 });
});
afterAll(async () => {
  await engine?.close();
  await local?.stop();
});

/** A fresh queue (and DLQ) per test, on the shared bucket and tables. */
async function fresh(): Promise<LongsightResources> {
  queueNo++;
  return provisionLongsight(local.clients, { queue: `worker-test-${queueNo}` }, { visibilityTimeoutSeconds: 4, maxReceiveCount: 3 });
}

test('runs jobs end to end: answers per question, DONE with timings, tokens, s, pooling and model id; message deleted; EMF metrics', async () => {
  const r = await fresh();
  const jobs = [await seedJob(local.clients, r, { frames: 3 }), await seedJob(local.clients, r, { frames: 5, questions: ['Only one question?'] })];
  const w = inProcessWorker(local.clients, r, engine);
  try {
    for (const j of jobs) {
      const item = await waitStatus(local.clients, r, j.jobId, ['DONE', 'FAILED']);
      expect(item.status).toBe('DONE');
      expect(item.attempts).toBe(1);
      expect(item.reason).toBeUndefined();
      expect(item.timings.extractMs).toBe(12); // the Lambda's timing is kept
      for (const k of ['queueWaitMs', 'frameLoadMs', 'visionMs', 'prefillMs', 'decodeMs', 'totalMs'] as const) expect(item.timings[k]).toBeGreaterThanOrEqual(0);
      expect(item.framesUsed).toBe(j.message.frames.count);
      expect(item.poolingUsed).toEqual(j.message.settings.pooling);
      expect(item.ropeMode).toBe('visual-yarn');
      expect(item.ropeScale).toBe(1); // few visual tokens: s <= 1, RoPE unchanged
      expect(item.tokens!.visual).toBeGreaterThan(0);
      expect(item.tokens!.generated).toBeGreaterThan(0);
      expect(item.modelId).toBe(engine.modelId);
      const answers = await answersOf(local.clients, r, j.jobId);
      expect(answers.map((a) => a.questionId).sort()).toEqual(j.message.questions.map((q) => q.id).sort());
      for (const a of answers) {
        expect(a.runToken).toBe(item.runToken);
        expect(a.videoUri).toBe(item.videoUri);
        expect(a.tokens.generated).toBeGreaterThan(0);
        expect(a.tokens.generated).toBeLessThanOrEqual(4);
      }
    }
    await waitFor('queue empty', async () => {
      const d = await queueDepth(local.clients, r.queueUrl);
      return d.visible + d.inFlight === 0;
    });
  } finally {
    await w.stop();
  }
  expect(w.stats.done).toBe(2);
  const emf = w.metricLines.map((l) => JSON.parse(l));
  const done = emf.filter((e) => e.JobsDone === 1);
  expect(done).toHaveLength(2);
  expect(done[0]._aws.CloudWatchMetrics[0].Namespace).toBe('Longsight');
  expect(done[0]._aws.CloudWatchMetrics[0].Metrics.map((m: { Name: string }) => m.Name)).toEqual(['JobsDone', 'JobLatencyMs']);
  expect(done[0].JobLatencyMs).toBeGreaterThan(0);
});

test('an invalid message is a permanent failure: job FAILED with the reason, message deleted, nothing retried', async () => {
  const r = await fresh();
  const good = await seedJob(local.clients, r, {}, false);
  const broken = { ...JSON.parse(good.body), settings: { ...JSON.parse(good.body).settings, frames: 0 } };
  await local.clients.sqs.send(new SendMessageCommand({ QueueUrl: r.queueUrl, MessageBody: JSON.stringify(broken) }));
  await local.clients.sqs.send(new SendMessageCommand({ QueueUrl: r.queueUrl, MessageBody: 'not json at all' }));
  const w = inProcessWorker(local.clients, r, engine);
  try {
    const item = await waitStatus(local.clients, r, good.jobId, ['FAILED', 'DONE']);
    expect(item.status).toBe('FAILED');
    expect(item.reason).toMatch(/invalid job message: settings\.frames/);
    await waitFor('both messages dropped', async () => w.stats.failed === 2);
    const d = await queueDepth(local.clients, r.queueUrl);
    expect(d.visible + d.inFlight).toBe(0);
    expect(await drain(local.clients, r.dlqUrl)).toEqual([]);
    expect(await answersOf(local.clients, r, good.jobId)).toEqual([]);
  } finally {
    await w.stop();
  }
});

test('a duplicated SQS delivery to two workers and a redelivery after DONE give one set of answers', async () => {
  const r = await fresh();
  const j = await seedJob(local.clients, r, { frames: 4 }, false);
  // Two copies on the queue before any worker starts; two workers take one each.
  await local.clients.sqs.send(new SendMessageCommand({ QueueUrl: r.queueUrl, MessageBody: j.body }));
  await local.clients.sqs.send(new SendMessageCommand({ QueueUrl: r.queueUrl, MessageBody: j.body }));
  const a = inProcessWorker(local.clients, r, slowed(engine, 300), {}, 'wa');
  const b = inProcessWorker(local.clients, r, slowed(engine, 300), {}, 'wb');
  try {
    const done = await waitStatus(local.clients, r, j.jobId, ['DONE', 'FAILED']);
    expect(done.status).toBe('DONE');
    await waitFor('both copies consumed', async () => {
      const d = await queueDepth(local.clients, r.queueUrl);
      return d.visible + d.inFlight === 0;
    });
    const answers = await answersOf(local.clients, r, j.jobId);
    expect(answers).toHaveLength(j.message.questions.length);
    expect(new Set(answers.map((x) => x.runToken))).toEqual(new Set([done.runToken]));
    expect(a.stats.done + b.stats.done).toBe(1);
    expect(a.stats.duplicates + b.stats.duplicates).toBe(1);

    // A late redelivery of the finished job: dropped, nothing rewritten.
    await local.clients.sqs.send(new SendMessageCommand({ QueueUrl: r.queueUrl, MessageBody: j.body }));
    await waitFor('redelivery dropped', async () => a.stats.duplicates + b.stats.duplicates === 2);
    const after = await jobItem(local.clients, r, j.jobId);
    expect(after).toEqual(done);
    expect(await answersOf(local.clients, r, j.jobId)).toEqual(answers);
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
});

test('a poison job (an undecodable frame) is retried, then FAILED with the last reason and moved to the DLQ after 3 receives', async () => {
  const r = await fresh();
  const j = await seedJob(local.clients, r, { corruptFrame: Buffer.from('definitely not a jpeg') });
  const w = inProcessWorker(local.clients, r, engine);
  try {
    const item = await waitStatus(local.clients, r, j.jobId, ['FAILED', 'DONE'], 180_000);
    expect(item.status).toBe('FAILED');
    expect(item.reason).toMatch(/^failed after 3 deliveries; last error: /);
    expect(item.attempts).toBe(3);
    const inDlq = await waitFor('message in the DLQ', async () => {
      const d = await drain(local.clients, r.dlqUrl);
      return d.length ? d : undefined;
    });
    expect(inDlq).toHaveLength(1);
    expect(JSON.parse(inDlq[0]).jobId).toBe(j.jobId);
    expect(w.stats.retried).toBe(2);
  } finally {
    await w.stop();
  }
});

test('a sequence over the budget is retried once with the fallback pooling, and the job records it', async () => {
  const r = await fresh();
  // 8 frames at the paper's schedule: 2 groups x (196 + 3x16) + 1 = 489 visual tokens > 300 budget;
  // the fallback (K=8, s_h=4, s_l=8): 49 + 7x16 + 1 = 162 fits.
  const j = await seedJob(local.clients, r, { frames: 8, settings: { maxSequenceTokens: 300, fallback: { pooling: { groupSize: 8, strideHigh: 4, strideLow: 8 } } } });
  const w = inProcessWorker(local.clients, r, engine);
  try {
    const item = await waitStatus(local.clients, r, j.jobId, ['DONE', 'FAILED']);
    expect(item.status).toBe('DONE');
    expect(item.fallback).toMatch(/SequenceBudgetError: .*retried once with pooling K=8 s_h=4 s_l=8/);
    expect(item.poolingUsed).toEqual({ groupSize: 8, strideHigh: 4, strideLow: 8 });
    expect(item.tokens!.visual).toBe(162);
    expect(item.attempts).toBe(1);
  } finally {
    await w.stop();
  }
});

test('without a usable fallback the budget error is permanent: FAILED, not retried', async () => {
  const r = await fresh();
  const j = await seedJob(local.clients, r, { frames: 8, settings: { maxSequenceTokens: 256, fallback: {} } });
  const w = inProcessWorker(local.clients, r, engine);
  try {
    const item = await waitStatus(local.clients, r, j.jobId, ['DONE', 'FAILED']);
    expect(item.status).toBe('FAILED');
    expect(item.reason).toMatch(/exceeds the configured budget of 256 \(no fallback configured/);
    expect(item.attempts).toBe(1);
  } finally {
    await w.stop();
  }
});

test('the heartbeat keeps a job longer than the visibility timeout from being redelivered', async () => {
  const r = await fresh();
  const j = await seedJob(local.clients, r);
  // Visibility 4 s, job ~7 s: without the heartbeat a second worker would receive it.
  const a = inProcessWorker(local.clients, r, slowed(engine, 7000), {}, 'slow');
  await waitStatus(local.clients, r, j.jobId, ['RUNNING']);
  const b = inProcessWorker(local.clients, r, engine, {}, 'idle');
  try {
    const item = await waitStatus(local.clients, r, j.jobId, ['DONE', 'FAILED']);
    expect(item.status).toBe('DONE');
    expect(item.attempts).toBe(1);
    expect(item.workerId).toBe('slow');
    expect(b.stats).toEqual({ done: 0, failed: 0, retried: 0, duplicates: 0, handedBack: 0, released: 0 });
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
});

test('a permanent failure after another delivery took the job over writes nothing and leaves the message to that delivery', async () => {
  const r = await fresh();
  const j = await seedJob(local.clients, r, { settings: { fallback: {} } }); // no fallback: the budget error is permanent
  const later = '999999.taken-over';
  let takenOver = false;
  const takeover: AnswerEngine = {
    modelId: engine.modelId,
    close: async () => undefined,
    answer: async (input) => {
      if (takenOver) return engine.answer(input);
      takenOver = true;
      // Another delivery claims the job (a later token) while this one runs; then this one fails for good.
      await local.clients.ddb.send(
        new UpdateCommand({ TableName: r.jobsTable, Key: { jobId: j.jobId }, UpdateExpression: 'SET runToken = :t, workerId = :w', ExpressionAttributeValues: { ':t': later, ':w': 'other' } }),
      );
      throw new SequenceBudgetError(9000, 8000);
    },
  };
  const w = inProcessWorker(local.clients, r, takeover, { maxReceiveCount: 3 });
  try {
    await waitFor('the outcome', async () => w.stats.duplicates + w.stats.failed > 0);
    expect(w.stats).toMatchObject({ failed: 0, duplicates: 1 });
    const item = await jobItem(local.clients, r, j.jobId);
    expect(item).toMatchObject({ status: 'RUNNING', runToken: later, workerId: 'other' });
    expect(item!.reason).toBeUndefined();
    expect(w.metricLines.filter((l) => /JobsFailed/.test(l))).toEqual([]);
    const d = await queueDepth(local.clients, r.queueUrl);
    expect(d.visible + d.inFlight).toBe(1); // not deleted: the owner's copy
  } finally {
    await w.stop();
  }
});
