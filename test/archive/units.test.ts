/**
 * The archive side's pure parts and small I/O pieces: the inventory reader (against the embedded S3
 * server), progress and ETA, the deployed run's result files, Glue partition inputs, the query
 * output formats, the report's arithmetic, the dry run's cost against `longsight plan`, and the
 * state machine's video test.
 */
import { gzipSync } from 'node:zlib';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { indexProfile, type JobItem } from '../../lib/contracts';
import { IS_VIDEO_CONDITION, VIDEO_KEY_PATTERN } from '../../lib/stack/backfill-state-machine';
import { skipReason } from '../../lambda/extract-frames/s3-event';
import { missingPartitionInputs } from '../../container/archive/athena-table';
import { predictCost, DEFAULT_PLAN_MODEL } from '../../container/archive/backfill-cost';
import { listInventory, listObjects, parseCsvLine, parseS3Uri } from '../../container/archive/listing';
import { etaSeconds, formatProgress, formatSummary } from '../../container/archive/progress';
import { formatCsv, formatJsonLines, formatTable, numberOrText } from '../../container/archive/query-result';
import { archiveReport, groupOf, percentile } from '../../container/archive/report';
import { executionName, executionNameOf, listItem, outcomesFromResults } from '../../container/archive/stack-backfill';
import { selectForIndexing, surveyVideos } from '../../container/archive/survey';
import { planJob } from '../../container/plan/job-plan';
import { loadPlanModel } from '../../container/plan/model-dims';
import { DEFAULT_SETTINGS } from '../../lib/contracts';
import { startLocalAws, type LocalAws } from '../support/local-aws';

jest.setTimeout(120_000);

describe('listing', () => {
  let local: LocalAws;
  beforeAll(async () => {
    local = await startLocalAws();
  });
  afterAll(() => local?.stop());

  const put = (key: string, body: string | Buffer, bucket = local.resources.bucket) => local.clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));

  it('parses s3 URIs and CSV lines with quotes, commas and doubled quotes', () => {
    expect(parseS3Uri('s3://longsight-videos')).toEqual({ bucket: 'longsight-videos', key: '' });
    expect(parseS3Uri('s3://longsight-videos/a/b/')).toEqual({ bucket: 'longsight-videos', key: 'a/b/' });
    expect(() => parseS3Uri('/tmp/x', 'a bucket to index')).toThrow(/"\/tmp\/x" is not a bucket to index \(s3:\/\/BUCKET\[\/PREFIX\]\)/);
    expect(parseCsvLine('"b","my+clip%2C1.mp4","3","x""y",""')).toEqual(['b', 'my+clip%2C1.mp4', '3', 'x"y', '']);
    expect(parseCsvLine('a,,"c,d"')).toEqual(['a', '', 'c,d']);
  });

  it('walks the whole bucket without entering frames/ or index/, and refuses to index them', async () => {
    for (const k of ['top.mp4', 'a/one.mp4', 'a/b/two.mov', 'frames/j-x/frame-00000.jpg', 'index/profile=p/dt=d/j.jsonl']) await put(k, k);
    const keys: string[] = [];
    for await (const page of listObjects(local.clients.s3, local.resources.bucket, '', false)) keys.push(...page.map((o) => o.key));
    expect(keys.sort()).toEqual(['a/b/two.mov', 'a/one.mp4', 'top.mp4']);
    await expect(async () => {
      for await (const _ of listObjects(local.clients.s3, local.resources.bucket, 'frames/', false)) void _;
    }).rejects.toThrow(/under frames\/ or index\/, where Longsight writes/);
  });

  it('reads an S3 Inventory report (manifest.json + gzipped CSV): current versions under the prefix, URL-encoded keys decoded', async () => {
    const rows = [
      ['videos-src', 'shelf/a+clip.mp4', 'v1', 'true', 'false', '100', '"e1"'],
      ['videos-src', 'shelf/old.mp4', 'v0', 'false', 'false', '90', 'e0'],
      ['videos-src', 'shelf/gone.mp4', 'v2', 'true', 'true', '0', 'e2'],
      ['videos-src', 'elsewhere/b.mp4', 'v3', 'true', 'false', '80', 'e3'],
      ['videos-src', 'shelf/%C3%A9t%C3%A9%2B1.mov', 'null', 'true', 'false', '70', 'e4'],
    ];
    const csv = rows.map((r) => r.map((f) => `"${f.replace(/"/g, '""')}"`).join(',')).join('\n') + '\n';
    await put('inv/data/1.csv.gz', gzipSync(csv));
    const manifest = {
      sourceBucket: 'videos-src',
      destinationBucket: `arn:aws:s3:::${local.resources.bucket}`,
      fileFormat: 'CSV',
      fileSchema: 'Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, ETag',
      files: [{ key: 'inv/data/1.csv.gz', size: 1, MD5checksum: 'x' }],
    };
    await put('inv/manifest.json', JSON.stringify(manifest));
    const listed = [];
    for await (const page of listInventory(local.clients.s3, { bucket: local.resources.bucket, key: 'inv/manifest.json' }, 'shelf/')) listed.push(...page);
    expect(listed).toEqual([
      { bucket: 'videos-src', key: 'shelf/a clip.mp4', size: 100, etag: 'e1', versionId: 'v1' },
      { bucket: 'videos-src', key: 'shelf/été+1.mov', size: 70, etag: 'e4' },
    ]);
    await put('inv/parquet.json', JSON.stringify({ ...manifest, fileFormat: 'Parquet' }));
    await expect(async () => {
      for await (const _ of listInventory(local.clients.s3, { bucket: local.resources.bucket, key: 'inv/parquet.json' }, '')) void _;
    }).rejects.toThrow(/Parquet format: only CSV inventories are read/);
  });
});

describe('survey and selection', () => {
  const profile = indexProfile({ modelId: 'm', settings: {}, questions: ['q'] }).id;
  async function* pages() {
    yield [
      { bucket: 'b', key: 'x/a.mp4', size: 1, etag: 'e1' },
      { bucket: 'b', key: 'x/a.questions.json', size: 1, etag: 'e2' },
      { bucket: 'b', key: 'x/readme.txt', size: 1, etag: 'e3' },
    ];
    yield [
      { bucket: 'b', key: 'x/b.MKV', size: 1, etag: 'e4' },
      { bucket: 'b', key: 'x/c.mov', size: 1, etag: 'e5' },
    ];
  }
  it('keeps videos, counts the rest by why, and selects only videos without a job, up to the limit', async () => {
    let existingId = '';
    const survey = await surveyVideos(pages(), profile, async (ids) => {
      existingId ||= ids[0];
      return new Map(ids.filter((id) => id === existingId).map((id) => [id, { jobId: id, status: 'DONE' } as JobItem]));
    });
    expect(survey.listed).toBe(5);
    expect(survey.videos.map((v) => v.object.key)).toEqual(['x/a.mp4', 'x/b.MKV', 'x/c.mov']);
    expect(Object.fromEntries(survey.notVideos)).toEqual({ 'a questions sidecar (read with its video)': 1, 'not a video suffix': 1 });
    const all = selectForIndexing(survey);
    expect(all.existing.map((v) => v.object.key)).toEqual(['x/a.mp4']);
    expect(all.toIndex.map((v) => v.object.key)).toEqual(['x/b.MKV', 'x/c.mov']);
    const one = selectForIndexing(survey, 1);
    expect(one.toIndex.map((v) => v.object.key)).toEqual(['x/b.MKV']);
    expect(one.deferred).toBe(1);
  });
});

describe('progress and summary', () => {
  it('estimates the time left from the rate so far', () => {
    expect(etaSeconds(0, 10, 5000)).toBeUndefined();
    expect(etaSeconds(2, 10, 4000)).toBe(16);
    expect(formatProgress({ done: 5, total: 20, indexed: 3, skipped: 1, failed: 1, elapsedMs: 10_000 })).toBe(
      '[#####...............] 5/20 videos (25%) · 3 indexed · 1 skipped · 1 failed · ETA 30 s',
    );
  });
  it('sums up indexed, skipped and failed with reasons', () => {
    const text = formatSummary({
      listed: 7,
      videos: 5,
      alreadyIndexed: 1,
      deferred: 1,
      notVideos: { 'not a video suffix': 2 },
      indexed: 2,
      skipped: [{ key: 'c.mp4', why: 'being extracted by another invocation' }],
      failed: [{ key: 'bad.mp4', reason: 'not a video: the file is empty (0 bytes)' }],
    });
    expect(text).toBe(
      [
        '7 objects listed: 5 videos, 2 other objects (2 × not a video suffix)',
        'Indexed 2 videos (jobs queued) · skipped 2 (1 indexed before this run; 1 × being extracted by another invocation) · failed 1 · 1 video left for a later run (--limit)',
        '  ✘ bad.mp4: not a video: the file is empty (0 bytes)',
      ].join('\n'),
    );
  });
});

describe('deployed backfill: names, items and result files', () => {
  it('names executions validly and sortably, and writes selected items as s3:listObjectsV2 gives them', () => {
    const name = executionName(new Date('2026-01-02T03:04:05.678Z'), 0.5);
    expect(name).toBe('index-20260102T030405Z-8000');
    expect(name).toMatch(/^[A-Za-z0-9_-]{1,80}$/);
    expect(executionNameOf(`arn:aws:states:us-east-1:123456789012:execution:Backfill:${name}`)).toBe(name);
    expect(listItem({ object: { bucket: 'b', key: 'a b.mp4', size: 5, etag: 'abc' }, jobId: 'j' })).toEqual({ Key: 'a b.mp4', Etag: '"abc"', Size: 5 });
  });

  it('reads the outcomes from SUCCEEDED (flattened JSON lines) and FAILED (child executions) result files', () => {
    const succeeded = [
      { outcome: 'queued', bucket: 'b', key: 'a.mp4', jobId: 'j-1', frames: 64, messageId: 'm' },
      { outcome: 'duplicate', bucket: 'b', key: 'b.mp4', jobId: 'j-2', status: 'DONE' },
      { outcome: 'failed', bucket: 'b', key: 'c.mp4', jobId: 'j-3', reason: 'not a video: PNG image' },
      { outcome: 'ignored', bucket: 'b', key: 'notes.txt', why: 'not a video suffix (or under frames/ or index/)' },
    ];
    const failed = [{ ExecutionArn: 'arn:x', Input: JSON.stringify({ Key: 'd.mp4', Etag: '"e"', Size: 1 }), Status: 'FAILED', Error: 'TransientMediaError', Cause: 'ffprobe timed out' }];
    const outcomes = outcomesFromResults([
      { key: 'backfill/n/run/manifest.json', body: '{}' },
      { key: 'backfill/n/run/SUCCEEDED_0.jsonl', body: succeeded.map((x) => JSON.stringify(x)).join('\n') + '\n' },
      { key: 'backfill/n/run/FAILED_0.json', body: JSON.stringify(failed) },
    ]);
    expect(outcomes).toEqual([
      { key: 'a.mp4', jobId: 'j-1', result: 'indexed', frames: 64 },
      { key: 'b.mp4', jobId: 'j-2', result: 'skipped', why: 'already indexed (job DONE)' },
      { key: 'c.mp4', jobId: 'j-3', result: 'failed', reason: 'not a video: PNG image' },
      { key: 'notes.txt', jobId: '', result: 'skipped', why: 'not a video suffix (or under frames/ or index/)' },
      { key: 'd.mp4', jobId: '', result: 'failed', reason: 'extraction failed after retries: TransientMediaError: ffprobe timed out' },
    ]);
  });

  it("the state machine's video test takes exactly what the extraction takes", () => {
    const re = new RegExp(VIDEO_KEY_PATTERN, 'i');
    const isVideo = (k: string) => re.test(k) && !/\.questions\.json$/i.test(k) && !k.startsWith('frames/') && !k.startsWith('index/');
    for (const k of ['a.mp4', 'b/C.MOV', 'x.mKv', 'y.webm', 'z.avi', 'w.m4v', 'v.ts', 'u.M2TS', 'q.mts', 'n.mp4.txt', 'a.questions.json', 'frames/j/f.mp4', 'index/x.mp4', 'pic.gif', 'folder/']) {
      expect(isVideo(k)).toBe(skipReason(k) === undefined);
    }
    expect(IS_VIDEO_CONDITION).toContain(`/${VIDEO_KEY_PATTERN}/i`);
  });
});

describe('Glue partitions', () => {
  it('creates only the partitions Glue lacks, at their index/ location, 100 a call', () => {
    const storage = { Columns: [{ Name: 'job_id', Type: 'string' }], Location: 's3://b/index/' };
    const inS3: [string, string][] = Array.from({ length: 150 }, (_, i) => ['p-aaaaaaaaaaaa', `2026-01-${String((i % 28) + 1).padStart(2, '0')}`] as [string, string]).slice(0, 28);
    inS3.push(['adhoc', '2026-02-01']);
    const batches = missingPartitionInputs(inS3, new Set(['p-aaaaaaaaaaaa\n2026-01-01']), storage, 'b');
    expect(batches.flat()).toHaveLength(28);
    expect(batches.flat()[0]).toEqual({ Values: ['p-aaaaaaaaaaaa', '2026-01-02'], StorageDescriptor: { ...storage, Location: 's3://b/index/profile=p-aaaaaaaaaaaa/dt=2026-01-02/' } });
    const many = missingPartitionInputs(Array.from({ length: 250 }, (_, i) => ['p', `d${i}`] as [string, string]), new Set(), storage, 'b');
    expect(many.map((b) => b.length)).toEqual([100, 100, 50]);
  });
});

describe('query output', () => {
  const r = {
    columns: [
      { name: 'video_uri', type: 'varchar' },
      { name: 'n', type: 'bigint' },
      { name: 'ts', type: 'double[]' },
    ],
    rows: [
      ['s3://b/a, "quoted".mp4', 2, [0.5, 1]],
      ['s3://b/b.mp4', 10, null],
    ],
  };
  it('prints an aligned table, JSON lines and RFC 4180 CSV', () => {
    expect(formatTable(r)).toBe(
      [
        'video_uri                n  ts',
        '----------------------  --  -------',
        's3://b/a, "quoted".mp4   2  [0.5,1]',
        's3://b/b.mp4            10',
        '(2 rows)',
      ].join('\n'),
    );
    expect(formatJsonLines(r).split('\n')).toEqual(['{"video_uri":"s3://b/a, \\"quoted\\".mp4","n":2,"ts":[0.5,1]}', '{"video_uri":"s3://b/b.mp4","n":10,"ts":null}']);
    expect(formatCsv(r)).toBe('video_uri,n,ts\n"s3://b/a, ""quoted"".mp4",2,"[0.5,1]"\ns3://b/b.mp4,10,');
  });
  it('keeps integers beyond 2^53 as text', () => {
    expect(numberOrText('bigint', '42')).toBe(42);
    expect(numberOrText('bigint', '9007199254740993')).toBe('9007199254740993');
    expect(numberOrText('double', '1.5')).toBe(1.5);
  });
});

describe('archive report arithmetic', () => {
  it('groups by folder under the prefix and takes nearest-rank percentiles', () => {
    expect(groupOf('shelf/a.mp4', 'shelf/')).toBe('(top level)');
    expect(groupOf('shelf/x/y/b.mp4', 'shelf/')).toBe('shelf/x/');
    expect(percentile([1, 2, 3, 4], 50)).toBe(2);
    expect(percentile([1, 2, 3, 4], 95)).toBe(4);
    expect(percentile([], 50)).toBeUndefined();
    const job = (status: string, totalMs: number, seconds: number, latencyS: number, reason?: string) =>
      ({ status, reason, timings: { totalMs }, frames: { count: 1, manifestKey: 'm', durationSeconds: seconds }, createdAt: '2026-01-01T00:00:00.000Z', updatedAt: new Date(Date.parse('2026-01-01T00:00:00.000Z') + latencyS * 1000).toISOString() }) as JobItem;
    const v = (key: string, j?: JobItem) => ({ object: { bucket: 'b', key, size: 1, etag: 'e' }, jobId: 'j', ...(j ? { job: j } : {}) });
    const rows = archiveReport(
      {
        listed: 4,
        notVideos: new Map(),
        videos: [v('a/1.mp4', job('DONE', 3_600_000, 1800, 10)), v('a/2.mp4', job('DONE', 1_800_000, 5400, 30)), v('b/3.mp4', job('FAILED', 0, 0, 0, 'not a video')), v('4.mp4')],
      },
      '',
      { usdPerGpuHour: 2, jobsPerWorker: 1 },
    );
    expect(rows.map((r) => r.group)).toEqual(['(top level)', 'a/', 'b/', 'total']);
    const total = rows[3];
    expect(total).toMatchObject({ found: 4, indexed: 2, failed: 1, notIndexed: 1, pending: 0, videoHours: 2, gpuHours: 1.5, costUsd: 3, p50LatencySeconds: 10, p95LatencySeconds: 30 });
    expect(total.failedReasons).toEqual(['1 × not a video']);
  });
});

describe('dry-run cost', () => {
  it('is what `longsight plan` predicts for the profile on the instance type, times the jobs', () => {
    const settings = { ...DEFAULT_SETTINGS, frames: 64, maxNewTokens: 64 };
    const c = predictCost({ jobs: 10, settings, questions: 3, instanceType: 'g6e.xlarge' });
    const plan = planJob({ model: loadPlanModel(DEFAULT_PLAN_MODEL), frames: 64, pooling: settings.pooling, chunk: settings.prefillChunk, dtype: 'fp16', questionTokens: 32, maxNewTokens: 64, rope: settings.rope, visionBatch: 8, target: 'gpu', questions: 3 });
    const on = plan.costs.chosen.instances.find((i) => i.instanceType === 'g6e.xlarge')!;
    expect(c.usdPerJob).toBe(on.usdPerVideo);
    expect(c.totalUsd).toBeCloseTo(10 * on.usdPerVideo, 12);
    // The GPU-hour price is the on-demand table's: L40S at $1.861 an instance-hour, one GPU.
    expect(on.usdPerGpuHour).toBe(1.861);
    expect(c.totalGpuHours).toBeCloseTo((10 * on.times.totalS) / 3600, 12);
    expect(c.framesPerJob).toBe(64);
    expect(predictCost({ jobs: 1, settings: { ...settings, frames: 1024, pooling: { groupSize: 1, strideHigh: 1, strideLow: 1 } }, questions: 1, instanceType: 'g4dn.xlarge' }).doesNotFit).toBeDefined();
  });
});
