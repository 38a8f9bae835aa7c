/**
 * @jest-environment ./test/convert/support/onnx-environment.js
 */
/**
 * The dead-letter reconciler (container/worker/dead-letters.ts). A real worker process SIGKILLed
 * mid-job on every delivery: no code of ours runs at the end, SQS dead-letters the message, and a
 * live worker's sweep marks the job FAILED with the reason, leaving the message in the DLQ for
 * `longsight requeue-dlq`. And the sweep's guards, one pass at a time: a live lease, a finished job,
 * an invalid body and a racing write are left alone.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReceiveMessageCommand, SendMessageBatchCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { main as cliMain } from '../../container/cli/main';
import { provisionLongsight, type LongsightResources } from '../../container/local/embedded-aws';
import { sweepDeadLetters, type SweepOptions } from '../../container/worker/dead-letters';
import { JobStore } from '../../container/worker/job-store';
import { createEmfMetrics } from '../../container/worker/metrics';
import { createLogger } from '../../lib/log';
import { startLocalAws, type LocalAws } from '../support/local-aws';
import { drain, jobItem, queueDepth, waitFor, waitStatus } from './support/harness';
import { seedJob } from './support/jobs';
import { spawnWorker, type WorkerChild } from './support/spawn-worker';
import { tinyModelDir } from './support/tiny-model';

jest.setTimeout(270_000);

const VISIBILITY = 2;
const MAX_RECEIVES = 2;
let local: LocalAws;
let modelDir: string;
let n = 0;
const children: WorkerChild[] = [];
const tmp = mkdtempSync(join(tmpdir(), 'longsight-dead-letters-'));

beforeAll(async () => {
  modelDir = await tinyModelDir();
  local = await startLocalAws({ visibilityTimeoutSeconds: VISIBILITY, maxReceiveCount: MAX_RECEIVES });
});
afterAll(async () => {
  for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  await local?.stop();
});

async function fresh(): Promise<LongsightResources> {
  n++;
  return provisionLongsight(local.clients, { queue: `dead-letter-test-${n}` }, { visibilityTimeoutSeconds: VISIBILITY, maxReceiveCount: MAX_RECEIVES });
}

/** Peeks at the DLQ the way the reconciler does (VisibilityTimeout 0: nothing is taken). */
async function dlqBodies(r: LongsightResources): Promise<string[]> {
  const got = await local.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: r.dlqUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 0 }));
  return (got.Messages ?? []).map((m) => m.Body ?? '');
}

test('a worker killed (SIGKILL) mid-job on every delivery: the message is dead-lettered, the job FAILED with the reason, the DLQ keeps the message for requeue-dlq', async () => {
  const r = await fresh();
  const j = await seedJob(local.clients, r);
  const config = { waitTimeSeconds: 1, visibilityTimeoutSeconds: VISIBILITY, heartbeatSeconds: 0.5, retryDelaySeconds: 0, maxReceiveCount: MAX_RECEIVES, metrics: { enabled: false } };
  const spawn = (delayMs: number, over: Record<string, unknown>, extra: Record<string, string> = {}) => {
    const c = spawnWorker(local.aws.env, r, modelDir, { ...config, health: { file: join(tmp, `health-${n}-${children.length}`) }, ...over }, { TEST_ENGINE_DELAY_MS: String(delayMs), LONGSIGHT_WORKER_ID: `child-${children.length}`, ...extra });
    children.push(c);
    return c;
  };
  for (let delivery = 1; delivery <= MAX_RECEIVES; delivery++) {
    // These workers have no DLQ URL: they only run (and die in) the job.
    const w = spawn(60_000, {});
    await w.waitForLog(/"msg":"job started"/);
    await waitFor(`delivery ${delivery} to claim the job`, async () => (await jobItem(local.clients, r, j.jobId))?.attempts === delivery);
    w.proc.kill('SIGKILL');
    expect((await w.exited).signal).toBe('SIGKILL');
  }
  expect((await jobItem(local.clients, r, j.jobId))?.status).toBe('RUNNING');

  // A live worker with the DLQ URL: its poll of the job queue makes SQS dead-letter the message
  // (receive count past maxReceiveCount), and its sweep (every second here) reconciles the job.
  const reconciler = spawn(0, { deadLetterSweepSeconds: 1, metrics: { enabled: true } }, { LONGSIGHT_DLQ_URL: r.dlqUrl });
  const item = await waitStatus(local.clients, r, j.jobId, ['FAILED', 'DONE'], 180_000);
  expect(item.status).toBe('FAILED');
  expect(item.reason).toBe(`dead-lettered after ${MAX_RECEIVES} deliveries; the worker stopped during the job (crash, kill or out of memory)`);
  expect(item.attempts).toBe(MAX_RECEIVES);
  // Two more sweeps see the FAILED job and leave it: JobsFailed is emitted once.
  await new Promise((res) => setTimeout(res, 2500));
  const failedMetrics = reconciler.logs.filter((l) => l.includes('"JobsFailed":1'));
  expect(failedMetrics).toHaveLength(1);
  expect(JSON.parse(failedMetrics[0])).toMatchObject({ jobId: j.jobId, reason: item.reason });
  reconciler.proc.kill('SIGTERM');
  expect((await reconciler.exited).code).toBe(0);

  // The message is still in the DLQ, visible, and `longsight requeue-dlq` moves it back.
  expect(await dlqBodies(r)).toEqual([j.body]);
  expect(await queueDepth(local.clients, r.queueUrl)).toEqual({ visible: 0, inFlight: 0 });
  const out: string[] = [];
  const code = await cliMain(['node', 'longsight', 'requeue-dlq', '--bucket', r.bucket, '--queue-url', r.queueUrl, '--dlq-url', r.dlqUrl, '--jobs-table', r.jobsTable, '--answers-table', r.answersTable], {
    out: (s) => out.push(s),
    err: (s) => out.push(s),
  });
  expect(out.join('\n')).toMatch(/1 requeued, 0 already DONE \(deleted\), 0 invalid/);
  expect(code).toBe(0);
  const requeued = await jobItem(local.clients, r, j.jobId);
  expect(requeued?.status).toBe('QUEUED');
  expect(requeued?.reason).toBe(`requeued from the DLQ; previously: ${item.reason}`);
  expect(await drain(local.clients, r.queueUrl)).toEqual([j.body]);
  expect(await dlqBodies(r)).toEqual([]);
});

describe('one sweep', () => {
  const LEASE_MS = 5_000;
  let r: LongsightResources;
  let store: JobStore;
  let metricLines: string[];
  const sweep = (o: SweepOptions = {}) =>
    sweepDeadLetters({ sqs: local.clients.sqs, dlqUrl: r.dlqUrl, store, log: createLogger({ service: 'test-dead-letters' }, () => undefined), metrics: createEmfMetrics('Longsight', {}, true, (l) => metricLines.push(l)) }, o);
  const setItem = (jobId: string, values: Record<string, unknown>) =>
    local.clients.ddb.send(
      new UpdateCommand({
        TableName: r.jobsTable,
        Key: { jobId },
        UpdateExpression: `SET ${Object.keys(values).map((k) => `#${k} = :${k}`).join(', ')}`,
        ExpressionAttributeNames: Object.fromEntries(Object.keys(values).map((k) => [`#${k}`, k])),
        ExpressionAttributeValues: Object.fromEntries(Object.entries(values).map(([k, v]) => [`:${k}`, v])),
      }),
    );
  const ago = (ms: number) => new Date(Date.now() - ms).toISOString();

  beforeEach(async () => {
    r = await fresh();
    store = new JobStore(local.clients.ddb, { jobsTable: r.jobsTable, answersTable: r.answersTable }, LEASE_MS);
    metricLines = [];
  });

  test('a RUNNING job with a live lease, a finished job and invalid bodies are left alone; a stale one is FAILED with its last recorded error', async () => {
    const live = await seedJob(local.clients, r, { frames: 1 }, false);
    await setItem(live.jobId, { status: 'RUNNING', attempts: 2, runToken: '000002.live', updatedAt: ago(1000) });
    const done = await seedJob(local.clients, r, { frames: 1 }, false);
    await setItem(done.jobId, { status: 'DONE', attempts: 1, updatedAt: ago(60_000) });
    const stale = await seedJob(local.clients, r, { frames: 1 }, false);
    await setItem(stale.jobId, { status: 'RUNNING', attempts: 3, runToken: '000003.dead', updatedAt: ago(60_000), reason: 'attempt 2 failed (will retry): S3 was down' });
    for (const body of [live.body, done.body, stale.body, '{"not":"a job"}', 'not json']) {
      await local.clients.sqs.send(new SendMessageCommand({ QueueUrl: r.dlqUrl, MessageBody: body }));
    }

    expect(await sweep()).toEqual({ seen: 3, failed: 1, read: 5, complete: true });
    expect(await jobItem(local.clients, r, live.jobId)).toMatchObject({ status: 'RUNNING', runToken: '000002.live' });
    expect((await jobItem(local.clients, r, done.jobId))?.status).toBe('DONE');
    expect(await jobItem(local.clients, r, stale.jobId)).toMatchObject({
      status: 'FAILED',
      reason: 'dead-lettered after 3 deliveries; the worker stopped during the job (crash, kill or out of memory); last recorded error: attempt 2 failed (will retry): S3 was down',
    });
    expect(metricLines.map((l) => JSON.parse(l))).toEqual([expect.objectContaining({ JobsFailed: 1, jobId: stale.jobId })]);
    // Nothing was taken from the DLQ.
    expect((await drain(local.clients, r.dlqUrl)).sort()).toEqual([live.body, done.body, stale.body, '{"not":"a job"}', 'not json'].sort());
  });

  test('a write since the read wins: the conditional FAILED write does not land', async () => {
    const j = await seedJob(local.clients, r, { frames: 1 }, false);
    await setItem(j.jobId, { status: 'RUNNING', attempts: 1, runToken: '000001.a', updatedAt: ago(60_000) });
    const seen = { ...(await store.get(j.jobId))!, jobId: j.jobId };
    // A requeue (QUEUED, new updatedAt) between the sweep's read and its write.
    await setItem(j.jobId, { status: 'QUEUED', updatedAt: new Date().toISOString() });
    expect(await store.failAsRead(seen, 'dead-lettered')).toBe(false);
    expect((await jobItem(local.clients, r, j.jobId))?.status).toBe('QUEUED');
    // Same status, but a later claim (new runToken): still not ours to fail.
    await setItem(j.jobId, { status: 'RUNNING', runToken: '000002.b', updatedAt: seen.updatedAt });
    expect(await store.failAsRead(seen, 'dead-lettered')).toBe(false);
    await setItem(j.jobId, { runToken: '000001.a' });
    expect(await store.failAsRead(seen, 'dead-lettered')).toBe(true);
    expect(await jobItem(local.clients, r, j.jobId)).toMatchObject({ status: 'FAILED', reason: 'dead-lettered' });
  });

  test('every dead letter is reconciled, not a sample: 160 in the DLQ, read in passes of at most 100, none deleted', async () => {
    // Leases far from the thresholds: seeding 160 items on a busy machine takes seconds.
    store = new JobStore(local.clients.ddb, { jobsTable: r.jobsTable, answersTable: r.answersTable }, 600_000);
    const stale = Array.from({ length: 150 }, (_, i) => `j-${i.toString(16).padStart(32, 'a')}`);
    const live = Array.from({ length: 10 }, (_, i) => `j-${i.toString(16).padStart(32, 'b')}`);
    const now = new Date().toISOString();
    for (const jobId of [...stale, ...live]) {
      const fresh = live.includes(jobId);
      await local.clients.ddb.send(
        new PutCommand({
          TableName: r.jobsTable,
          Item: { jobId, videoUri: 's3://b/k.mp4', status: 'RUNNING', attempts: 3, runToken: '000003.x', createdAt: now, updatedAt: fresh ? now : ago(3_600_000), questions: [], settings: {} },
        }),
      );
    }
    const all = [...stale, ...live];
    for (let i = 0; i < all.length; i += 10) {
      await local.clients.sqs.send(new SendMessageBatchCommand({ QueueUrl: r.dlqUrl, Entries: all.slice(i, i + 10).map((jobId, k) => ({ Id: String(k), MessageBody: JSON.stringify({ jobId }) })) }));
    }

    const first = await sweep({ maxMessages: 100, holdSeconds: 120 });
    expect(first).toMatchObject({ read: 100, complete: false });
    // The first pass's messages stay hidden: the second pass reads the other 60 and shows all again.
    const second = await sweep({ maxMessages: 100, holdSeconds: 120 });
    expect(second).toMatchObject({ read: 60, complete: true });
    expect(first.failed + second.failed).toBe(150);
    const items = await Promise.all(all.map((jobId) => jobItem(local.clients, r, jobId)));
    expect(items.filter((it) => it?.status === 'FAILED').map((it) => it!.jobId).sort()).toEqual([...stale].sort());
    expect(items.filter((it) => it?.status === 'RUNNING').map((it) => it!.jobId).sort()).toEqual([...live].sort());
    expect(metricLines).toHaveLength(150);
    // Nothing deleted; the second pass made its 60 visible again, the first pass's 100 stay hidden until their hold ends.
    expect(await queueDepth(local.clients, r.dlqUrl)).toEqual({ visible: 60, inFlight: 100 });
  });
});
