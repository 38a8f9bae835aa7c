/**
 * @jest-environment ./test/convert/support/onnx-environment.js
 */
/**
 * The reconciler (lambda/reconcile) on the real servers: stranded jobs (their message lost) are
 * re-queued and then finish on a real worker, or past the attempt budget FAILED with a reason;
 * never-finished extractions are closed; live jobs and a queue backlog are left alone. And the
 * Lambda entry point built from its environment, as the stack configures it.
 */
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { provisionLongsight, type LongsightResources } from '../../container/local/embedded-aws';
import { createOnnxEngine } from '../../container/runtime/onnx-engine';
import { JobStore } from '../../container/worker/job-store';
import { createEmfMetrics } from '../../container/worker/metrics';
import { handler as reconcilerLambda } from '../../lambda/reconcile/handler';
import { judgeJob, reconcileOnce, type ReconcilerSettings } from '../../lambda/reconcile/reconciler';
import { ENV } from '../../lib/contracts';
import { applyEnv } from '../../container/local/embedded-aws';
import { createLogger } from '../../lib/log';
import { startLocalAws, type LocalAws } from '../support/local-aws';
import { answersOf, drain, inProcessWorker, jobItem, queueDepth, waitStatus } from './support/harness';
import { seedJob } from './support/jobs';
import { tinyModelDir } from './support/tiny-model';
import { drainQueue } from '../support/queue';

jest.setTimeout(360_000);

let local: LocalAws;
let n = 0;
const SETTINGS: ReconcilerSettings = { staleAfterMs: 60_000, extractionGiveUpMs: 600_000, maxAttempts: 3, maxJobsPerPass: 100, maxDeadLettersPerPass: 100, deadLetterHoldSeconds: 30 };

beforeAll(async () => {
  local = await startLocalAws({ visibilityTimeoutSeconds: 4, maxReceiveCount: 3 });
});
afterAll(async () => local?.stop());

async function fresh(): Promise<LongsightResources> {
  n++;
  // Tables of its own: each pass looks at every stale job in the table.
  return provisionLongsight(local.clients, { queue: `reconciler-${n}`, jobsTable: `reconciler-jobs-${n}`, answersTable: `reconciler-answers-${n}` }, { visibilityTimeoutSeconds: 4, maxReceiveCount: 3 });
}

const ago = (ms: number) => new Date(Date.now() - ms).toISOString();
function setItem(r: LongsightResources, jobId: string, values: Record<string, unknown>, remove: string[] = []) {
  return local.clients.ddb.send(
    new UpdateCommand({
      TableName: r.jobsTable,
      Key: { jobId },
      UpdateExpression: `SET ${Object.keys(values).map((k) => `#${k} = :${k}`).join(', ')}${remove.length ? ` REMOVE ${remove.join(', ')}` : ''}`,
      ExpressionAttributeNames: Object.fromEntries(Object.keys(values).map((k) => [`#${k}`, k])),
      ExpressionAttributeValues: Object.fromEntries(Object.entries(values).map(([k, v]) => [`:${k}`, v])),
    }),
  );
}

function pass(r: LongsightResources, metricLines: string[] = []) {
  return reconcileOnce({
    ...local.clients,
    store: new JobStore(local.clients.ddb, { jobsTable: r.jobsTable, answersTable: r.answersTable }, 4000),
    jobsTable: r.jobsTable,
    queueUrl: r.queueUrl,
    dlqUrl: r.dlqUrl,
    settings: SETTINGS,
    log: createLogger({ service: 'test-reconciler' }, () => undefined),
    metrics: createEmfMetrics('Longsight', {}, true, (l) => metricLines.push(l)),
  });
}

test('a RUNNING job whose owner died after its message was deleted is re-queued and finishes DONE on a worker', async () => {
  const r = await fresh();
  const j = await seedJob(local.clients, r, {}, false); // the message is gone
  await setItem(r, j.jobId, { status: 'RUNNING', attempts: 1, runToken: '000001.dead', workerId: 'dead', updatedAt: ago(120_000), enqueuedAt: ago(130_000) });
  const result = await pass(r);
  expect(result.resent).toEqual([j.jobId]);
  const requeued = await jobItem(local.clients, r, j.jobId);
  expect(requeued).toMatchObject({ status: 'QUEUED', resends: 1, attempts: 1 });
  expect(requeued!.reason).toMatch(/^re-queued by the reconciler: RUNNING with no live delivery for 1\d\d s/);
  // A second pass right after changes nothing: the job is fresh now.
  expect((await pass(r)).resent).toEqual([]);
  const engine = await createOnnxEngine({ modelDir: await tinyModelDir(), executionProvider: 'cpu', threads: 1 });
  const w = inProcessWorker(local.clients, r, engine);
  try {
    const item = await waitStatus(local.clients, r, j.jobId, ['DONE', 'FAILED'], 180_000);
    expect(item).toMatchObject({ status: 'DONE', attempts: 2 });
    const answers = await answersOf(local.clients, r, j.jobId);
    expect(answers).toHaveLength(j.message.questions.length);
  } finally {
    await w.stop();
    await engine.close();
  }
});

test('past the attempt budget a stranded job is FAILED with its reason; a live job, a finished job and a QUEUED job behind a backlog are left alone', async () => {
  const r = await fresh();
  const spent = await seedJob(local.clients, r, { frames: 1 }, false);
  await setItem(r, spent.jobId, { status: 'RUNNING', attempts: 2, resends: 1, runToken: '000002.x', updatedAt: ago(600_000), enqueuedAt: ago(900_000), reason: 'attempt 1 failed (will retry): CUDA error' });
  const live = await seedJob(local.clients, r, { frames: 1 }, false);
  await setItem(r, live.jobId, { status: 'RUNNING', attempts: 1, runToken: '000001.live', updatedAt: ago(1000), enqueuedAt: ago(5000) });
  const done = await seedJob(local.clients, r, { frames: 1 }, false);
  await setItem(r, done.jobId, { status: 'DONE', updatedAt: ago(600_000), enqueuedAt: ago(900_000) });
  const waiting = await seedJob(local.clients, r, { frames: 1 }, false);
  await setItem(r, waiting.jobId, { status: 'QUEUED', updatedAt: ago(600_000), enqueuedAt: ago(600_000) });
  // Someone else's message waits in the queue: the QUEUED job's own may be in that backlog too.
  await local.clients.sqs.send(new SendMessageCommand({ QueueUrl: r.queueUrl, MessageBody: '{"backlog":true}' }));

  const metricLines: string[] = [];
  const result = await pass(r, metricLines);
  expect(result.failed).toEqual([spent.jobId]);
  expect(result.resent).toEqual([]);
  expect(await jobItem(local.clients, r, spent.jobId)).toMatchObject({
    status: 'FAILED',
    reason: 'stranded: RUNNING with no live delivery for 10 min after 2 attempts and 1 re-sent message; last recorded error: attempt 1 failed (will retry): CUDA error',
  });
  expect(metricLines.map((l) => JSON.parse(l))).toEqual([expect.objectContaining({ JobsFailed: 1, jobId: spent.jobId })]);
  expect((await jobItem(local.clients, r, live.jobId))?.status).toBe('RUNNING');
  expect((await jobItem(local.clients, r, done.jobId))?.status).toBe('DONE');
  expect((await jobItem(local.clients, r, waiting.jobId))?.status).toBe('QUEUED');

  // The backlog consumed and the QUEUED job still untouched: its message is lost; re-sent.
  await drainQueue(local.clients.sqs, r.queueUrl);
  const again = await pass(r);
  expect(again.resent).toEqual([waiting.jobId]);
  const bodies = await drain(local.clients, r.queueUrl);
  expect(bodies.map((b) => JSON.parse(b).jobId)).toContain(waiting.jobId);
});

test('an extraction that never finished: closed FAILED when no frames were recorded, its message sent when they were', async () => {
  const r = await fresh();
  const noFrames = await seedJob(local.clients, r, { frames: 1 }, false);
  await setItem(r, noFrames.jobId, { status: 'QUEUED', updatedAt: ago(3_600_000), extractLease: { token: 't', until: ago(3_000_000) } }, ['frames']);
  const framed = await seedJob(local.clients, r, { frames: 2 }, false);
  await setItem(r, framed.jobId, { status: 'QUEUED', updatedAt: ago(3_600_000), extractLease: { token: 't', until: ago(3_000_000) } });
  const retrying = await seedJob(local.clients, r, { frames: 1 }, false);
  await setItem(r, retrying.jobId, { status: 'QUEUED', updatedAt: ago(120_000), extractLease: { token: 't', until: ago(60_000) } }, ['frames']);

  const result = await pass(r);
  expect(result.failed).toEqual([noFrames.jobId]);
  expect(result.resent).toEqual([framed.jobId]);
  expect((await jobItem(local.clients, r, noFrames.jobId))?.reason).toMatch(/^extraction never finished: .* failed-events queue/);
  const sent = await jobItem(local.clients, r, framed.jobId);
  expect(sent).toMatchObject({ status: 'QUEUED', resends: 1 });
  expect(sent!.enqueuedAt).toBeDefined();
  expect(sent!.extractLease).toBeUndefined();
  const [body] = await drain(local.clients, r.queueUrl);
  const msg = JSON.parse(body);
  expect(msg).toMatchObject({ jobId: framed.jobId, questions: framed.message.questions, frames: { count: 2, manifestKey: framed.message.frames.manifestKey, timestamps: [0, 0.5] } });
  expect((await jobItem(local.clients, r, retrying.jobId))?.status).toBe('QUEUED');
});

test('judgeJob: thresholds and budget, pure', () => {
  const now = Date.parse('2026-01-01T12:00:00Z');
  const at = (ms: number) => new Date(now - ms).toISOString();
  const ctx = { now, settings: SETTINGS, queueBacklog: false };
  expect(judgeJob({ status: 'RUNNING', updatedAt: at(59_000), enqueuedAt: at(70_000) }, ctx).action).toBe('leave');
  expect(judgeJob({ status: 'RUNNING', updatedAt: at(61_000), enqueuedAt: at(70_000), attempts: 2 }, ctx).action).toBe('resend');
  expect(judgeJob({ status: 'RUNNING', updatedAt: at(61_000), enqueuedAt: at(70_000), attempts: 2, resends: 1 }, ctx).action).toBe('fail');
  expect(judgeJob({ status: 'QUEUED', updatedAt: at(61_000), enqueuedAt: at(70_000) }, { ...ctx, queueBacklog: true }).action).toBe('leave');
  expect(judgeJob({ status: 'QUEUED', updatedAt: at(900_000), extractLease: { token: 't', until: at(599_000) } }, ctx).action).toBe('leave');
  expect(judgeJob({ status: 'DONE', updatedAt: at(9e9) }, ctx).action).toBe('leave');
});

test('the Lambda entry point reads its configuration from the environment (errors name the variable) and runs a pass', async () => {
  const r = await fresh();
  const j = await seedJob(local.clients, r, { frames: 1 }, false);
  await setItem(r, j.jobId, { status: 'RUNNING', attempts: 1, runToken: '000001.dead', updatedAt: ago(3_600_000), enqueuedAt: ago(3_700_000) });
  const config = { staleAfterSeconds: 60, extractionGiveUpSeconds: 600, maxAttempts: 3, deadLetterHoldSeconds: 30, leaseSeconds: 4 };
  const restore = applyEnv({ [ENV.reconcilerConfig]: JSON.stringify(config), [ENV.jobsTable]: r.jobsTable, [ENV.queueUrl]: r.queueUrl, [ENV.dlqUrl]: r.dlqUrl });
  try {
    expect(await reconcilerLambda()).toMatchObject({ resent: 1, failed: 0, deadLetters: { complete: true } });
  } finally {
    restore();
  }
  expect(await queueDepth(local.clients, r.queueUrl)).toEqual({ visible: 1, inFlight: 0 });
  const { reconcilerDepsFromEnv } = await import('../../lambda/reconcile/handler');
  expect(() => reconcilerDepsFromEnv({})).toThrow(/LONGSIGHT_RECONCILER_CONFIG is not set/);
  expect(() => reconcilerDepsFromEnv({ [ENV.reconcilerConfig]: '{"staleAfterSeconds":-1}' })).toThrow(/LONGSIGHT_RECONCILER_CONFIG: staleAfterSeconds: Too small/);
});
