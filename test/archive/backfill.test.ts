/**
 * @jest-environment ./test/convert/support/onnx-environment.js
 */
/**
 * Archive scale on the embedded servers: `longsight index` over a prefix that already holds
 * videos, non-videos and a nested folder (the real extraction handler, a real worker on the tiny
 * model), reruns and --limit/--dry-run, the export against the answers table, `longsight query`
 * through DuckDB, and a profile change that re-indexes while the old answers stay.
 */
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { main } from '../../container/cli/main';
import { createExtractHandler } from '../../lambda/extract-frames/handler';
import { buildS3Event } from '../../lambda/extract-frames/s3-event';
import { createLogger } from '../../lib/log';
import { ENV, exportDay, extractionProfile, ExtractRuntimeConfigSchema, FrameManifestSchema, type ExportRecord, type ExtractRuntimeConfig, type JobItem } from '../../lib/contracts';
import type { RunningWorker } from '../../container/worker/worker';
import { RECIPES, videoFile } from '../support/videos';
import { answersOf, inProcessWorker, jobItem, waitStatus } from '../worker/support/harness';
import { startRig, type Rig } from '../e2e/support/stack';

jest.setTimeout(360_000);

const USD_PER_GPU_HOUR = 2;
let rig: Rig;
let worker: RunningWorker;
let flags: string[];
const savedConfig = process.env[ENV.extractConfig];

const configA = ExtractRuntimeConfigSchema.parse({ extraction: { frames: 3 }, inference: { maxNewTokens: 3 }, questions: ['What is shown?', 'Is it day or night?'], modelId: 'tiny-a' });
const configB = ExtractRuntimeConfigSchema.parse({ ...configA, questions: [...configA.questions, 'Who is there?'] });
const useConfig = (c: ExtractRuntimeConfig) => (process.env[ENV.extractConfig] = JSON.stringify(c));

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['node', 'longsight', ...args], { out: (s) => out.push(s), err: (s) => err.push(s) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}
const index = async (...args: string[]) => {
  const r = await cli('index', 's3://longsight-videos/shelf/', ...flags, '--json', '--log-file', join(tmpdir(), `longsight-index-test-${process.pid}.log`), ...args);
  return { ...r, json: r.out ? JSON.parse(r.out.split('\n').pop()!) : undefined };
};
const query = async (sql: string, ...args: string[]) => cli('query', sql, ...flags, ...args);
const rows = (out: string) => out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

async function jobsOfTable(): Promise<JobItem[]> {
  const r = await rig.local.clients.ddb.send(new ScanCommand({ TableName: rig.local.resources.jobsTable, ConsistentRead: true }));
  return (r.Items ?? []) as JobItem[];
}

async function exportFiles(): Promise<{ key: string; records: ExportRecord[] }[]> {
  const { s3 } = rig.local.clients;
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: rig.local.resources.bucket, Prefix: 'index/' }));
  return Promise.all(
    (listed.Contents ?? []).map(async (o) => {
      const body = await (await s3.send(new GetObjectCommand({ Bucket: rig.local.resources.bucket, Key: o.Key! }))).Body!.transformToString('utf8');
      return { key: o.Key!, records: body.trim().split('\n').map((l) => JSON.parse(l) as ExportRecord) };
    }),
  );
}

beforeAll(async () => {
  rig = await startRig(configA.questions);
  const r = rig.local.resources;
  flags = ['--bucket', r.bucket, '--queue-url', r.queueUrl, '--dlq-url', r.dlqUrl, '--jobs-table', r.jobsTable, '--answers-table', r.answersTable];
  worker = inProcessWorker(rig.local.clients, r, rig.engine, { pricing: { instanceType: 'g5.xlarge', usdPerHour: { 'g5.xlarge': USD_PER_GPU_HOUR } } });
  const put = (key: string, body: string) => rig.local.clients.s3.send(new PutObjectCommand({ Bucket: r.bucket, Key: key, Body: body }));
  await rig.upload(await videoFile(RECIPES.h264Mp4), 'shelf/a.mp4');
  await rig.upload(await videoFile(RECIPES.h264Mov), 'shelf/nested/deeper/b.MOV');
  await rig.upload(await videoFile(RECIPES.h264Mkv), 'elsewhere/c.mkv');
  await put('shelf/a.questions.json', JSON.stringify({ questions: ['What colour is the sky?'] }));
  await put('shelf/notes.txt', 'not a video');
  useConfig(configA);
});
afterAll(async () => {
  if (savedConfig === undefined) delete process.env[ENV.extractConfig];
  else process.env[ENV.extractConfig] = savedConfig;
  await worker?.stop();
  const endpoint = rig?.local.aws.env.AWS_ENDPOINT_URL_S3;
  if (endpoint) rmSync(join('.cache', 'index', endpoint.replace(/^https?:\/\//, '').replace(/[^A-Za-z0-9.-]/g, '_')), { recursive: true, force: true });
  await rig?.stop();
});

test('backfill of a prefix: only its videos (nested too) become jobs; --dry-run hands nothing off, --limit stops early, reruns resume and then make none', async () => {
  const profile = extractionProfile(configA).id;
  const dry = await index('--dry-run');
  expect(dry.code).toBe(0);
  expect(dry.json).toMatchObject({ dryRun: true, profile, listed: 4, videos: 2, alreadyIndexed: 0, toIndex: ['shelf/a.mp4', 'shelf/nested/deeper/b.MOV'] });
  expect(dry.json.notVideos).toEqual({ 'a questions sidecar (read with its video)': 1, 'not a video suffix': 1 });
  expect(dry.json.cost).toMatchObject({ jobs: 2, framesPerJob: 3, instanceType: 'g5.xlarge' });
  expect(dry.json.cost.totalUsd).toBeGreaterThan(0);
  expect(await jobsOfTable()).toEqual([]);

  const first = await index('--limit', '1', '--wait');
  expect(first.code).toBe(0);
  expect(first.json).toMatchObject({ indexed: 1, alreadyIndexed: 0, deferred: 1, failed: [] });
  const [a] = await jobsOfTable();
  expect(a).toMatchObject({ videoUri: `s3://${rig.local.resources.bucket}/shelf/a.mp4`, profile, status: 'DONE' });

  const second = await index();
  expect(second.json).toMatchObject({ indexed: 1, alreadyIndexed: 1, deferred: 0, failed: [] });
  const third = await index();
  expect(third.json).toMatchObject({ indexed: 0, alreadyIndexed: 2, failed: [] });

  // The upload event of a backfilled video, delivered late (or twice): still one job.
  const handler = createExtractHandler({ clients: rig.local.clients, config: configA, jobsTable: rig.local.resources.jobsTable, queueUrl: rig.local.resources.queueUrl, logger: createLogger({}, () => undefined) });
  const head = await rig.local.clients.s3.send(new ListObjectsV2Command({ Bucket: rig.local.resources.bucket, Prefix: 'shelf/a.mp4' }));
  const obj = { bucket: rig.local.resources.bucket, key: 'shelf/a.mp4', size: head.Contents![0].Size!, etag: head.Contents![0].ETag! };
  const again = await handler(buildS3Event(obj, obj));
  expect(again.results.map((x) => x.outcome)).toEqual(['duplicate', 'duplicate']);
  const jobs = await jobsOfTable();
  expect(jobs.map((j) => j.videoUri).sort()).toEqual(['shelf/a.mp4', 'shelf/nested/deeper/b.MOV'].map((k) => `s3://${rig.local.resources.bucket}/${k}`));
  for (const j of jobs) await waitStatus(rig.local.clients, rig.local.resources, j.jobId, ['DONE']);
});

test('the export holds one record per answer, equal to the answers table and the job items', async () => {
  const files = await exportFiles();
  const jobs = await jobsOfTable();
  expect(files.map((f) => f.key).sort()).toEqual(jobs.map((j) => `index/profile=${j.profile}/dt=${exportDay(j.createdAt)}/${j.jobId}.jsonl`).sort());
  for (const { records } of files) {
    const job = (await jobItem(rig.local.clients, rig.local.resources, records[0].job_id))!;
    const answers = await answersOf(rig.local.clients, rig.local.resources, job.jobId);
    const manifest = FrameManifestSchema.parse(JSON.parse(await (await rig.local.clients.s3.send(new GetObjectCommand({ Bucket: rig.local.resources.bucket, Key: job.frames!.manifestKey }))).Body!.transformToString()));
    expect(records.map((r) => r.question_id).sort()).toEqual(answers.map((a) => a.questionId).sort());
    for (const rec of records) {
      const a = answers.find((x) => x.questionId === rec.question_id)!;
      expect(rec).toMatchObject({
        job_id: job.jobId,
        video_uri: job.videoUri,
        video_version: `e:${job.video.etag}`,
        video_bytes: job.video.sizeBytes,
        video_seconds: job.frames!.durationSeconds,
        profile: job.profile,
        dt: job.createdAt.slice(0, 10),
        model_id: a.modelId,
        question: a.question,
        answer: a.answer,
        answered_at: a.answeredAt,
        prompt_tokens: a.tokens.prompt,
        generated_tokens: a.tokens.generated,
        answer_latency_ms: a.latencyMs,
        frames: job.framesUsed,
        frame_timestamps: manifest.frames.map((f) => f.timestamp),
        visual_tokens: job.tokens!.visual,
        rope_scale: job.ropeScale,
        rope_mode: job.ropeMode,
        pool_group_size: job.poolingUsed!.groupSize,
        pool_stride_high: job.poolingUsed!.strideHigh,
        pool_stride_low: job.poolingUsed!.strideLow,
        extract_ms: job.timings.extractMs,
        queue_ms: job.timings.queueWaitMs,
        vision_ms: job.timings.visionMs,
        job_total_ms: job.timings.totalMs,
        fallback: null,
      });
      // The job's GPU time and cost, split over its answers: sums give the job's.
      expect(rec.gpu_seconds! * records.length).toBeCloseTo(job.timings.totalMs! / 1000, 9);
      // The job's cost record (seconds × the price of its instance type's GPU, to the micro-dollar), split the same way.
      expect(rec.cost_usd! * records.length).toBeCloseTo(job.cost!.usd!, 12);
      expect(Math.abs(job.cost!.usd! - (job.timings.totalMs! / 3_600_000) * USD_PER_GPU_HOUR)).toBeLessThanOrEqual(1e-6);
    }
  }
  // a.mp4's sidecar adds a question: 3 answers; b.MOV: 2.
  expect(files.flatMap((f) => f.records)).toHaveLength(5);
});

test('longsight query runs SQL over the export with DuckDB; a bad statement gives DuckDB\'s message, not a stack trace', async () => {
  const jobs = await jobsOfTable();
  const count = await query('SELECT count(*) AS n FROM answers', '--json');
  expect(count.code).toBe(0);
  expect(rows(count.out)).toEqual([{ n: 5 }]);

  const sky = await query("SELECT video_uri, question FROM answers WHERE lower(question) LIKE '%sky%'", '--json');
  expect(rows(sky.out)).toEqual([{ video_uri: `s3://${rig.local.resources.bucket}/shelf/a.mp4`, question: 'What colour is the sky?' }]);

  const perProfile = await query('SELECT profile, count(*) AS answers, count(DISTINCT job_id) AS jobs FROM answers GROUP BY profile ORDER BY profile', '--json');
  expect(rows(perProfile.out)).toEqual([{ profile: extractionProfile(configA).id, answers: 5, jobs: 2 }]);

  const slowest = [...jobs].sort((x, y) => y.timings.totalMs! - x.timings.totalMs!)[0];
  const slow = await query('SELECT job_id, max(job_total_ms) AS ms FROM answers GROUP BY job_id ORDER BY ms DESC LIMIT 1', '--csv');
  expect(slow.out).toBe(`job_id,ms\n${slowest.jobId},${slowest.timings.totalMs}`);

  const table = await query('SELECT job_id, frames, visual_tokens FROM answers ORDER BY job_id, question_id LIMIT 1');
  expect(table.out.split('\n')[0]).toMatch(/^job_id +frames +visual_tokens$/);
  expect(table.out).toMatch(/\(1 row\)$/);

  const bad = await query('SELEC nope FROM answers');
  expect(bad.code).toBe(1);
  expect(bad.err).toMatch(/^longsight: query failed: Parser Error: syntax error at or near "SELEC"/);
  expect(bad.err).not.toMatch(/\n\s+at /);
  const unknown = await query('SELECT nope FROM answers');
  expect(unknown.code).toBe(1);
  expect(unknown.err).toMatch(/Binder Error: Referenced column "nope" not found/);
});

test('a profile change (another question) indexes the same videos again as new jobs; the old answers stay queryable; the report counts either profile', async () => {
  const old = extractionProfile(configA).id;
  useConfig(configB);
  const next = extractionProfile(configB).id;
  expect(next).not.toBe(old);
  const r = await index('--wait');
  expect(r.json).toMatchObject({ profile: next, indexed: 2, alreadyIndexed: 0, failed: [] });
  const byProfile = await query('SELECT profile, count(DISTINCT job_id) AS jobs, count(*) AS answers FROM answers GROUP BY profile ORDER BY answers', '--json');
  expect(rows(byProfile.out)).toEqual(
    [
      { profile: old, jobs: 2, answers: 5 },
      { profile: next, jobs: 2, answers: 7 },
    ].sort((x, y) => x.answers - y.answers),
  );
  expect((await jobsOfTable()).filter((j) => j.profile === old).every((j) => j.status === 'DONE')).toBe(true);

  const current = await index('--report');
  expect(current.code).toBe(0);
  const total = current.json.rows.find((x: { group: string }) => x.group === 'total');
  expect(current.json.profile).toBe(next);
  expect(current.json.rows.map((x: { group: string }) => x.group)).toEqual(['(top level)', 'shelf/nested/', 'total']);
  const doneB = (await jobsOfTable()).filter((j) => j.profile === next);
  expect(total).toMatchObject({ found: 2, indexed: 2, failed: 0, notIndexed: 0 });
  expect(total.videoHours).toBeCloseTo(doneB.reduce((s, j) => s + j.frames!.durationSeconds!, 0) / 3600, 9);
  const before = await index('--report', '--profile', old);
  expect(before.json.rows.find((x: { group: string }) => x.group === 'total')).toMatchObject({ found: 2, indexed: 2 });

  const wrong = await index('--profile', old);
  expect(wrong.code).toBe(2);
  expect(wrong.err).toMatch(new RegExp(`indexes under its current profile ${next}, not ${old}`));
});

test('refusals name the problem: another bucket, no extraction configuration', async () => {
  const other = await cli('index', 's3://some-other-bucket/x/', ...flags);
  expect(other.code).toBe(2);
  expect(other.err).toMatch(/s3:\/\/some-other-bucket is not the video bucket of flags\/environment \(longsight-videos\)/);
  delete process.env[ENV.extractConfig];
  try {
    const none = await cli('index', 's3://longsight-videos/shelf/', ...flags);
    expect(none.code).toBe(2);
    expect(none.err).toMatch(/needs the extraction configuration/);
  } finally {
    useConfig(configB);
  }
});
