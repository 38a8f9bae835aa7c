/**
 * @jest-environment ./test/convert/support/onnx-environment.js
 */
/**
 * The worker as a real process (the container's entrypoint, run through tsx): killed with SIGKILL
 * mid-job, stopped with SIGTERM mid-job, its health check, and its startup errors. Jobs are held
 * for a few seconds before the real engine runs (worker-child.ts), so the signal lands mid-job.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { uploadFile } from '../../container/local/upload';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { provisionLongsight, type LongsightResources } from '../../container/local/embedded-aws';
import { checkHealth } from '../../container/worker/health';
import { startLocalAws, type LocalAws } from '../support/local-aws';
import { answersOf, drain, jobItem, queueDepth, waitFor, waitStatus } from './support/harness';
import { ensureTinyModel } from '../../container/convert/tiny-model-package';
import { seedJob } from './support/jobs';
import { spawnWorker, TSX_LOADER, type WorkerChild } from './support/spawn-worker';
import { tinyModelDir } from './support/tiny-model';

jest.setTimeout(360_000);

let local: LocalAws;
let modelDir: string;
let n = 0;
const children: WorkerChild[] = [];
const tmp = mkdtempSync(join(tmpdir(), 'longsight-worker-proc-'));

const CONFIG = { waitTimeSeconds: 1, visibilityTimeoutSeconds: 4, heartbeatSeconds: 1, retryDelaySeconds: 0, metrics: { enabled: false } };

beforeAll(async () => {
  modelDir = await tinyModelDir();
  local = await startLocalAws({ visibilityTimeoutSeconds: 4, maxReceiveCount: 3 });
});
afterAll(async () => {
  for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  await local?.stop();
});

async function fresh(): Promise<LongsightResources> {
  n++;
  return provisionLongsight(local.clients, { queue: `proc-test-${n}` }, { visibilityTimeoutSeconds: 4, maxReceiveCount: 3 });
}

function worker(r: LongsightResources, delayMs: number, config: Record<string, unknown> = {}, extra: Record<string, string> = {}): WorkerChild {
  const c = spawnWorker(local.aws.env, r, modelDir, { ...CONFIG, health: { file: join(tmp, `health-${n}-${children.length}`), intervalSeconds: 0.2, maxAgeSeconds: 2 }, ...config }, { TEST_ENGINE_DELAY_MS: String(delayMs), LONGSIGHT_WORKER_ID: `child-${children.length}`, ...extra });
  children.push(c);
  return c;
}

test('a worker killed with SIGKILL mid-job: the job is redelivered and finishes once, on another worker', async () => {
  const r = await fresh();
  const j = await seedJob(local.clients, r);
  const a = worker(r, 60_000);
  await a.waitForLog(/"msg":"job started"/);
  expect((await waitStatus(local.clients, r, j.jobId, ['RUNNING'])).workerId).toBe(`child-${children.indexOf(a)}`);
  a.proc.kill('SIGKILL');
  expect((await a.exited).signal).toBe('SIGKILL');
  const b = worker(r, 0);
  const item = await waitStatus(local.clients, r, j.jobId, ['DONE', 'FAILED'], 180_000);
  expect(item.status).toBe('DONE');
  expect(item.attempts).toBe(2);
  expect(item.workerId).toBe(`child-${children.indexOf(b)}`);
  const answers = await answersOf(local.clients, r, j.jobId);
  expect(answers).toHaveLength(j.message.questions.length);
  for (const x of answers) expect(x.runToken).toBe(item.runToken);
  await waitFor('queue empty', async () => {
    const d = await queueDepth(local.clients, r.queueUrl);
    return d.visible + d.inFlight === 0;
  });
  expect(await drain(local.clients, r.dlqUrl)).toEqual([]);
  b.proc.kill('SIGTERM');
  expect((await b.exited).code).toBe(0);
});

test('model from S3 at start; SIGTERM during a job that ends within the stop timeout: the job finishes, the process exits 0', async () => {
  const r = await fresh();
  // The converted package uploaded as the stack's model artifact; the worker downloads it into its cache.
  for (const f of readdirSync(modelDir)) {
    await uploadFile(local.clients.s3, r.bucket, `models/tiny/${f}`, join(modelDir, f), 'application/octet-stream');
  }
  const j = await seedJob(local.clients, r);
  const w = worker(r, 2000, { stopTimeoutSeconds: 20 }, { LONGSIGHT_MODEL_URI: `s3://${r.bucket}/models/tiny/`, LONGSIGHT_MODEL_CACHE: join(tmp, 'model-cache') });
  await w.waitForLog(/"msg":"model package downloaded"/);
  await w.waitForLog(/"msg":"job started"/);
  w.proc.kill('SIGTERM');
  const exit = await w.exited;
  expect(exit.code).toBe(0);
  const item = await waitStatus(local.clients, r, j.jobId, ['DONE', 'FAILED', 'QUEUED']);
  expect(item.status).toBe('DONE');
  expect(w.logs.some((l) => /"msg":"worker stopping: no new jobs"/.test(l))).toBe(true);
});

test('SIGTERM during a job longer than the stop timeout: the job is released (QUEUED, message visible at once), exit 0 in time', async () => {
  const r = await fresh();
  const j = await seedJob(local.clients, r);
  const w = worker(r, 60_000, { stopTimeoutSeconds: 2 });
  await w.waitForLog(/"msg":"job started"/);
  const t0 = Date.now();
  w.proc.kill('SIGTERM');
  const exit = await w.exited;
  const stopMs = Date.now() - t0;
  expect(exit.code).toBe(0);
  // Well within ECS's SIGKILL budget (the stop timeout is 2 s here, 120 s deployed), with room for a busy machine.
  expect(stopMs).toBeLessThan(15_000);
  const item = await waitStatus(local.clients, r, j.jobId, ['QUEUED']);
  expect(item.reason).toMatch(/released by a stopping worker/);
  // Visible again at once (well before the 4 s visibility timeout), second delivery.
  const got = await local.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: r.queueUrl, WaitTimeSeconds: 1, MessageSystemAttributeNames: ['ApproximateReceiveCount'] }));
  expect(got.Messages).toHaveLength(1);
  expect(got.Messages![0].Attributes?.ApproximateReceiveCount).toBe('2');
});

test('inference off the event loop: during a session run of more than 10 s, heartbeats keep their period within 1 s and SIGTERM is acted on within 1 s', async () => {
  const r = await fresh();
  // The wide checkpoint generates ~10 ms a token on one thread: 4,000 tokens in the graph's loop is one
  // session run of ~40 s (the test stops the worker after 10 s of it).
  const { packageDir } = await ensureTinyModel({ preset: 'wide' });
  const j = await seedJob(local.clients, r, { frames: 1, questions: ['Describe the video.'], settings: { maxNewTokens: 4000 } });
  const w = worker(r, 0, { heartbeatSeconds: 1, visibilityTimeoutSeconds: 10, stopTimeoutSeconds: 3, model: { dir: packageDir } });
  await w.waitForLog(/"msg":"job started"/, 60_000);
  // Every heartbeat refreshes the job's lease (updatedAt); sample the item and keep each new value.
  const beats: number[] = [];
  const started = Date.now();
  while (Date.now() - started < 10_000) {
    const item = await jobItem(local.clients, r, j.jobId);
    const at = Date.parse(item!.updatedAt);
    if (beats[beats.length - 1] !== at) beats.push(at);
    expect(item!.status).toBe('RUNNING'); // still inside the one generation run
    await new Promise((res) => setTimeout(res, 100));
  }
  expect(beats.length).toBeGreaterThanOrEqual(8);
  const gaps = beats.slice(1).map((b, i) => b - beats[i]);
  expect(Math.max(...gaps)).toBeLessThan(1000 + 1000);
  const t0 = Date.now();
  w.proc.kill('SIGTERM');
  const line = await w.waitForLog(/"msg":"worker stopping: no new jobs"/);
  expect(Date.parse(JSON.parse(line).time) - t0).toBeLessThan(1000);
  // The run cannot be interrupted: the job is released at the stop deadline and the inference process is ended with the worker.
  expect((await w.exited).code).toBe(0);
  expect(Date.now() - t0).toBeLessThan(3000 + 2000);
  expect((await waitStatus(local.clients, r, j.jobId, ['QUEUED'])).reason).toMatch(/released by a stopping worker/);
});

test('health: the file is fresh while the worker runs; the health command exits 0, then 1 once the worker is gone', async () => {
  const r = await fresh();
  const w = worker(r, 0);
  await w.waitForLog(/"msg":"worker ready/);
  const file = join(tmp, `health-${n}-${children.indexOf(w)}`);
  await waitFor('a fresh health file', async () => checkHealth(file, 2).ok);
  const cmd = () =>
    spawnSync(process.execPath, ['--import', TSX_LOADER, join(__dirname, '../../container/worker/health.ts')], {
      env: { ...process.env, LONGSIGHT_WORKER_CONFIG: JSON.stringify({ health: { file, maxAgeSeconds: 2 } }) },
      encoding: 'utf8',
    });
  const ok = cmd();
  expect(ok.stdout).toMatch(/^healthy: ready/);
  expect(ok.status).toBe(0);
  w.proc.kill('SIGTERM');
  expect((await w.exited).code).toBe(0);
  await new Promise((res) => setTimeout(res, 2500));
  const stale = cmd();
  expect(stale.status).toBe(1);
  expect(stale.stdout).toMatch(/^unhealthy: last heartbeat \d+ s ago \(limit 2 s\)/);
});

test('startup errors name the problem and exit 1', async () => {
  const r = await fresh();
  const w = worker(r, 0, {}, { LONGSIGHT_QUEUE_URL: '' });
  expect((await w.exited).code).toBe(1);
  expect(w.logs.join('\n')).toMatch(/the worker needs LONGSIGHT_QUEUE_URL/);
  const bad = worker(r, 0, { jobsPerWorker: 0 });
  expect((await bad.exited).code).toBe(1);
  expect(bad.logs.join('\n')).toMatch(/invalid worker configuration: jobsPerWorker: Too small/);
});
