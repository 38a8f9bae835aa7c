/**
 * The worker's small parts: the fallback settings, frame subsets, failure classification, EMF
 * records, configuration errors, the model cache against a real (embedded) S3, and how the CLI
 * finds its target.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { ContractError, InferenceSettingsSchema, parseWorkerConfig } from '../../lib/contracts';
import { createLogger } from '../../lib/log';
import { OutOfMemoryError, SequenceBudgetError } from '../../container/runtime/engine';
import { classifyFailure, isRetryableAwsError, JobAbandonedError, PermanentJobError } from '../../container/worker/errors';
import { uniformSubset } from '../../container/worker/frame-loader';
import { emfRecord } from '../../container/worker/metrics';
import { ensureModelPackage, parseS3Uri } from '../../container/worker/model-cache';
import { fallbackFor } from '../../container/worker/process-job';
import { timingOf } from '../../container/worker/config';
import { startPoller } from '../../container/worker/queue-poller';
import { keysFor } from '../../container/local/pipeline';
import { encodeEventKey } from '../../lambda/extract-frames/s3-event';
import { resolveTarget } from '../../container/local/targets';
import { startLocalAws } from '../support/local-aws';

const quiet = createLogger({}, () => undefined);

test('fallback: the stronger pooling and/or fewer frames from settings.fallback, described; none when it changes nothing', () => {
  const s = InferenceSettingsSchema.parse({ frames: 8, fallback: { pooling: { groupSize: 8, strideHigh: 4, strideLow: 8 }, frames: 4 } });
  const fb = fallbackFor(s, 8)!;
  expect(fb.settings.pooling).toEqual({ groupSize: 8, strideHigh: 4, strideLow: 8 });
  expect(fb.settings.frames).toBe(4);
  expect(fb.frameIndices).toEqual([1, 3, 5, 7]);
  expect(fb.description).toBe('pooling K=8 s_h=4 s_l=8, 4 of 8 frames');
  expect(fallbackFor(InferenceSettingsSchema.parse({ fallback: {} }), 8)).toBeUndefined();
  expect(fallbackFor(InferenceSettingsSchema.parse({ fallback: { frames: 16 } }), 8)).toBeUndefined();
});

test('uniform frame subsets keep order, spread over the whole video, never repeat', () => {
  expect(uniformSubset(10, 3)).toEqual([1, 5, 8]);
  expect(uniformSubset(3, 5)).toEqual([0, 1, 2]);
  const big = uniformSubset(1024, 256);
  expect(new Set(big).size).toBe(256);
  expect(big[0]).toBeLessThan(4);
  expect(big[255]).toBeGreaterThan(1019);
});

test('failure classes: contract errors permanent, OOM and budget fall back, abandonment aborts, the rest transient', () => {
  expect(classifyFailure(new ContractError('job message', [{ path: 'jobId', message: 'bad' }]))).toBe('permanent');
  expect(classifyFailure(new PermanentJobError('gone'))).toBe('permanent');
  expect(classifyFailure(new SequenceBudgetError(9000, 8000))).toBe('fallback');
  expect(classifyFailure(new OutOfMemoryError('CUDA out of memory'))).toBe('fallback');
  expect(classifyFailure(new JobAbandonedError('stopping', 'SIGTERM'))).toBe('aborted');
  expect(classifyFailure(new Error('sharp: unsupported image format'))).toBe('transient');
  expect(isRetryableAwsError(Object.assign(new Error('slow down'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } }))).toBe(true);
  expect(isRetryableAwsError(Object.assign(new Error('x'), { name: 'ConditionalCheckFailedException', $metadata: { httpStatusCode: 400 } }))).toBe(false);
  expect(isRetryableAwsError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }))).toBe(true);
  expect(isRetryableAwsError(Object.assign(new Error('oops'), { $metadata: { httpStatusCode: 503 } }))).toBe(true);
});

test('EMF record: namespace, dimension set, metric definitions and values on one line', () => {
  const r = emfRecord('Longsight', { Stack: 'Longsight-prod' }, { JobsDone: { value: 1, unit: 'Count' }, JobLatencyMs: { value: 1234, unit: 'Milliseconds' } }, { jobId: 'j-1' }, 1700000000000);
  expect(r).toEqual({
    jobId: 'j-1',
    Stack: 'Longsight-prod',
    JobsDone: 1,
    JobLatencyMs: 1234,
    _aws: { Timestamp: 1700000000000, CloudWatchMetrics: [{ Namespace: 'Longsight', Dimensions: [['Stack']], Metrics: [{ Name: 'JobsDone', Unit: 'Count' }, { Name: 'JobLatencyMs', Unit: 'Milliseconds' }] }] },
  });
});

test('worker configuration: defaults from {}, the stack\'s keys accepted, errors name the field; lease between heartbeat and visibility', () => {
  const c = parseWorkerConfig({});
  expect(c).toMatchObject({ jobsPerWorker: 1, visibilityTimeoutSeconds: 300, maxReceiveCount: 3, model: { executionProvider: 'cuda' }, metrics: { namespace: 'Longsight' } });
  expect(timingOf(c)).toEqual({ heartbeatMs: 100_000, leaseMs: 200_000 });
  expect(parseWorkerConfig({ jobsPerWorker: 2, visibilityTimeoutSeconds: 600, maxReceiveCount: 5, stopTimeoutSeconds: 120, metrics: { namespace: 'Longsight', dimensions: { Stack: 'x' } } }).jobsPerWorker).toBe(2);
  expect(() => parseWorkerConfig({ heartbeatSeconds: 400, visibilityTimeoutSeconds: 300 })).toThrow(/heartbeatSeconds: heartbeatSeconds must be shorter than visibilityTimeoutSeconds/);
  expect(() => parseWorkerConfig({ concurrency: 2 })).toThrow(/unknown key "concurrency"/);
});

test('model cache: downloads the package from S3 once, reuses it while the objects\' hashes match, fetches again when one changes', async () => {
  const local = await startLocalAws();
  try {
    const s3 = local.clients.s3;
    const bucket = local.resources.bucket;
    const files: Record<string, string> = { 'longsight-model.json': '{"format":"longsight-model"}', 'decoder.onnx': 'decoder-bytes', 'sub/tokenizer.json': '{}' };
    for (const [k, v] of Object.entries(files)) await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `models/tiny/${k}`, Body: v }));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'models/tinyother/decoder.onnx', Body: 'not mine' }));
    const cache = mkdtempSync(join(tmpdir(), 'longsight-model-cache-'));
    const first = await ensureModelPackage(s3, `s3://${bucket}/models/tiny`, cache, quiet);
    expect(first.downloaded).toBe(true);
    expect(readFileSync(join(first.dir, 'sub', 'tokenizer.json'), 'utf8')).toBe('{}');
    expect(readdirSync(first.dir).sort()).toEqual(['.longsight-download.json', 'decoder.onnx', 'longsight-model.json', 'sub']);
    const second = await ensureModelPackage(s3, `s3://${bucket}/models/tiny/`, cache, quiet);
    expect(second).toEqual({ dir: first.dir, downloaded: false, bytes: first.bytes });
    // A local file damaged (size differs) or a new upload (ETag differs): fetched again.
    writeFileSync(join(first.dir, 'decoder.onnx'), 'short');
    expect((await ensureModelPackage(s3, `s3://${bucket}/models/tiny/`, cache, quiet)).downloaded).toBe(true);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'models/tiny/decoder.onnx', Body: 'decoder-BYTES' }));
    const third = await ensureModelPackage(s3, `s3://${bucket}/models/tiny/`, cache, quiet);
    expect(third.downloaded).toBe(true);
    expect(readFileSync(join(third.dir, 'decoder.onnx'), 'utf8')).toBe('decoder-BYTES');
    await expect(ensureModelPackage(s3, `s3://${bucket}/models/none/`, cache, quiet)).rejects.toThrow(/no model package at s3:\/\/.*models\/none\/: the prefix holds no objects/);
    await expect(ensureModelPackage(s3, `s3://${bucket}/models/tinyother`, cache, quiet)).rejects.toThrow(/holds no longsight-model\.json/);
    expect(parseS3Uri('s3://b/p')).toEqual({ bucket: 'b', prefix: 'p/' });
  } finally {
    await local.stop();
  }
});

test('the CLI target: flags or LONGSIGHT_* variables complete; otherwise an error that says what to pass', async () => {
  const full = { bucket: 'b', queueUrl: 'q', dlqUrl: 'd', jobsTable: 'j', answersTable: 'a' };
  await expect(resolveTarget(full, {})).resolves.toMatchObject({ resources: full, source: 'flags/environment' });
  await expect(
    resolveTarget({}, { LONGSIGHT_VIDEO_BUCKET: 'b', LONGSIGHT_QUEUE_URL: 'q', LONGSIGHT_DLQ_URL: 'd', LONGSIGHT_JOBS_TABLE: 'j', LONGSIGHT_ANSWERS_TABLE: 'a' }),
  ).resolves.toMatchObject({ resources: full });
  await expect(resolveTarget({ bucket: 'b' }, {})).rejects.toThrow(/pass --stack NAME .*missing: --queue-url, --dlq-url, --jobs-table, --answers-table/);
});

test('upload keys: base names made unique; S3 event keys encoded as S3 does', () => {
  expect(keysFor(['/a/x.mp4', '/b/x.mp4', '/c/y.mov'])).toEqual(['x.mp4', '2-x.mp4', 'y.mov']);
  expect(encodeEventKey('talks/my talk ü.mp4')).toBe('talks/my+talk+%C3%BC.mp4');
});

test('the poller runs many jobs one at a time without piling up listeners on its stop signal', async () => {
  const local = await startLocalAws();
  // Net 'abort' listeners per signal, sampled while the poller runs (Node warns past 10 on one signal).
  const net = new Map<EventTarget, number>();
  const realAdd = EventTarget.prototype.addEventListener;
  const realRemove = EventTarget.prototype.removeEventListener;
  const add = jest.spyOn(EventTarget.prototype, 'addEventListener');
  const remove = jest.spyOn(EventTarget.prototype, 'removeEventListener');
  const count = (self: EventTarget, type: string, d: number) => {
    if (type === 'abort' && self instanceof AbortSignal) net.set(self, (net.get(self) ?? 0) + d);
  };
  add.mockImplementation(function (this: EventTarget, type, listener, options) {
    count(this, type, 1);
    return realAdd.call(this, type, listener, options);
  });
  remove.mockImplementation(function (this: EventTarget, type, listener, options) {
    count(this, type, -1);
    return realRemove.call(this, type, listener, options);
  });
  try {
    const { sqs } = local.clients;
    const queueUrl = local.resources.queueUrl;
    for (let i = 0; i < 14; i++) await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: `m${i}` }));
    const seen: string[] = [];
    let running = 0;
    let maxRunning = 0;
    const poller = startPoller({
      sqs,
      queueUrl,
      concurrency: 1,
      waitTimeSeconds: 1,
      visibilityTimeoutSeconds: 30,
      log: quiet,
      handle: async (m) => {
        maxRunning = Math.max(maxRunning, ++running);
        await new Promise((res) => setTimeout(res, 5));
        await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle! }));
        seen.push(m.Body!);
        running--;
      },
    });
    while (seen.length < 14) await new Promise((res) => setTimeout(res, 20));
    const most = Math.max(0, ...net.values());
    poller.stop();
    await poller.done;
    expect(seen.sort()).toEqual(Array.from({ length: 14 }, (_, i) => `m${i}`).sort());
    expect(maxRunning).toBe(1);
    expect(most).toBeLessThanOrEqual(2);
  } finally {
    add.mockRestore();
    remove.mockRestore();
    await local.stop();
  }
}, 60_000);

test('stopping the poller during a long poll gives back what that poll receives, visible at once', async () => {
  const local = await startLocalAws();
  try {
    const { sqs } = local.clients;
    const queueUrl = local.resources.queueUrl;
    const handled: string[] = [];
    const poller = startPoller({ sqs, queueUrl, concurrency: 1, waitTimeSeconds: 2, visibilityTimeoutSeconds: 30, log: quiet, handle: async (m) => handled.push(m.Body!) });
    await new Promise((res) => setTimeout(res, 300)); // the long poll is waiting
    poller.stop();
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'late' }));
    await poller.done;
    expect(handled).toEqual([]);
    const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 1, MessageSystemAttributeNames: ['ApproximateReceiveCount'] }));
    expect(r.Messages?.map((m) => m.Body)).toEqual(['late']);
  } finally {
    await local.stop();
  }
}, 30_000);
