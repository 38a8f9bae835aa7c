/**
 * Untrusted uploads through the real extraction handler on the embedded servers:
 *  - any Unicode (astral-plane emoji, combining marks, right-to-left text, U+FFFE) in keys and
 *    sidecar questions round-trips exactly, and the job message is printable ASCII;
 *  - a message body the queue refuses fails the job for good (no re-extraction on every retry);
 *  - MPEG-TS (188-byte and 192-byte-packet M2TS), also when the first ffprobe crashes on it;
 *  - an animated GIF under a video suffix is a video, a still one is not;
 *  - a playlist renamed .mp4 ends FAILED and reads nothing, and ffmpeg's protocols are restricted
 *    even if a demuxer that opens other inputs were chosen.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { ExtractRuntimeConfigSchema } from '../../lib/contracts/env-config';
import { parseJobMessage } from '../../lib/contracts/job-message';
import { createLogger } from '../../lib/log';
import { resolveBinaries } from '../../lambda/extract-frames/binaries';
import { createExtractHandler, type ExtractHandlerDeps, type ObjectOutcome } from '../../lambda/extract-frames/handler';
import { probeVideo, ProbeFailure } from '../../lambda/extract-frames/probe';
import { startFaultProxy } from '../worker/support/fault-proxy';
import { startLocalAws, type LocalAws } from '../support/local-aws';
import { drainQueue } from '../support/queue';
import { uploadObject } from '../support/s3-upload';
import { s3Event } from '../support/s3-event';
import { RECIPES, videoFile, type Recipe } from '../support/videos';

jest.setTimeout(360_000);

const testsrc = (ext: string, out: string[], seconds = 2) => ({ kind: 'ffmpeg', ext, args: ['-f', 'lavfi', '-i', `testsrc=size=160x120:rate=10:duration=${seconds}`, ...out] }) as Recipe;
const x264 = ['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '10', '-pix_fmt', 'yuv420p'];
const INPUTS = {
  ts: testsrc('.ts', [...x264, '-f', 'mpegts']),
  m2ts: testsrc('.m2ts', [...x264, '-f', 'mpegts', '-mpegts_m2ts_mode', '1']),
  animatedGif: testsrc('.gif', ['-f', 'gif']),
  stillGif: { kind: 'ffmpeg', ext: '.gif', args: ['-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=1', '-frames:v', '1', '-f', 'gif'] } as Recipe,
};

let local: LocalAws;
let logs: Record<string, unknown>[] = [];
const logger = createLogger({ component: 'extract-frames' }, (line) => logs.push(JSON.parse(line)));

beforeAll(async () => {
  local = await startLocalAws();
});
afterAll(async () => local?.stop());

function handlerWith(over: Partial<ExtractHandlerDeps> = {}) {
  return createExtractHandler({
    logger,
    clients: local.clients,
    config: ExtractRuntimeConfigSchema.parse({ extraction: { frames: 2 }, inference: {}, questions: ['Describe this video in detail.'] }),
    jobsTable: local.resources.jobsTable,
    queueUrl: local.resources.queueUrl,
    concurrency: 2,
    ...over,
  });
}

async function extract(file: string, key: string, over: Partial<ExtractHandlerDeps> = {}): Promise<ObjectOutcome> {
  const up = await uploadObject(local.clients.s3, local.resources.bucket, key, file);
  const r = await handlerWith(over)(s3Event(up));
  expect(r.results).toHaveLength(1);
  return r.results[0];
}

async function jobOf(outcome: ObjectOutcome) {
  const jobId = (outcome as { jobId: string }).jobId;
  return (await local.clients.ddb.send(new GetCommand({ TableName: local.resources.jobsTable, Key: { jobId }, ConsistentRead: true }))).Item!;
}

test('any Unicode in the key and the sidecar questions round-trips exactly; the job message is printable ASCII', async () => {
  const key = 'uploads/🎬 clip ﬁnal שלום e\u0301\ufffe.MP4';
  const questions = ['What happens in 🎬 scene 𝟙?', 'Qu\u0065\u0301 pasa aqu\u00ed?', 'מה קורה בסרטון?', 'Is there a \ufffe marker?'];
  await local.clients.s3.send(new PutObjectCommand({ Bucket: local.resources.bucket, Key: key.replace(/\.MP4$/, '.questions.json'), Body: JSON.stringify({ questions }) }));
  const out = await extract(await videoFile(RECIPES.h264Mp4), key);
  expect(out).toMatchObject({ outcome: 'queued', key });
  const [body] = await drainQueue(local.clients.sqs, local.resources.queueUrl);
  expect(body).toMatch(/^[\x20-\x7e]+$/);
  const msg = parseJobMessage(body);
  expect(msg.video.key).toBe(key);
  expect(msg.questions.map((q) => q.text).slice(1)).toEqual(questions);
  const item = await jobOf(out);
  expect(item.videoUri).toBe(`s3://${local.resources.bucket}/${key}`);
  expect(item.questions.map((q: { text: string }) => q.text).slice(1)).toEqual(questions);
});

test('a body the queue refuses (InvalidMessageContents) fails the job for good: FAILED with the reason, no retry, no re-extraction', async () => {
  const proxy = await startFaultProxy(local.aws.endpoints.sqs);
  proxy.rule = (q) => (q.target.endsWith('.SendMessage') ? 'reject-content' : 'pass');
  const viaProxy = local.resources.queueUrl.replace(/^http:\/\/[^/]+/, proxy.url);
  proxy.rewrite = (b) => b.split(viaProxy).join(local.resources.queueUrl);
  const sqs = new SQSClient({ endpoint: proxy.url });
  try {
    const file = await videoFile(RECIPES.h264Mov);
    const over = { clients: { ...local.clients, sqs }, queueUrl: viaProxy };
    logs = [];
    const out = await extract(file, 'refused/clip.mov', over);
    expect(out).toMatchObject({ outcome: 'failed' });
    expect((out as { reason: string }).reason).toMatch(/^the job queue refused the job message \(InvalidMessageContents: Invalid characters found/);
    expect(await jobOf(out)).toMatchObject({ status: 'FAILED', reason: (out as { reason: string }).reason });
    // S3 redelivers the event: the job is finished, nothing is extracted again.
    const again = await handlerWith(over)(s3Event(await uploadObject(local.clients.s3, local.resources.bucket, 'refused/clip.mov', file)));
    expect(again.results[0]).toMatchObject({ outcome: 'duplicate', status: 'FAILED' });
    expect(logs.filter((l) => l.msg === 'extracting frames')).toHaveLength(1);
    expect(proxy.counts['reject-content']).toBe(1);
  } finally {
    sqs.destroy();
    await proxy.close();
  }
});

test('MPEG-TS and M2TS are read; a probe killed by a signal is retried with the second prober and reported with the signal', async () => {
  for (const [name, key] of [['ts', 'broadcast/news.ts'], ['m2ts', 'camera/00001.M2TS']] as const) {
    const out = await extract(await videoFile(INPUTS[name]), key);
    // At least one frame: the sampling of streams with a non-zero start time (TS starts at 1.4 s)
    // belongs to the decode path, not to reading the container.
    expect(out).toMatchObject({ outcome: 'queued' });
    expect((out as { frames: number }).frames).toBeGreaterThanOrEqual(1);
  }
  await drainQueue(local.clients.sqs, local.resources.queueUrl);
  // A prober that dies of SIGSEGV on every file (as the npm-shipped 2023 ffprobe does on MPEG-TS).
  const dir = mkdtempSync(join(tmpdir(), 'longsight-crash-'));
  const crashing = join(dir, 'ffprobe');
  writeFileSync(crashing, '#!/bin/sh\nkill -SEGV $$\n', { mode: 0o755 });
  const system = resolveBinaries();
  const real = system.source === 'npm' ? system.secondProber ?? system.ffprobe : system.ffprobe;
  logs = [];
  const retried = await extract(await videoFile(INPUTS.ts), 'broadcast/retried.ts', { binaries: { ffmpeg: system.ffmpeg, ffprobe: crashing, secondProber: real } });
  expect(retried).toMatchObject({ outcome: 'queued' });
  expect(logs.find((l) => l.msg === 'ffprobe was killed by a signal: retrying with the second prober')).toMatchObject({ signal: 'SIGSEGV' });
  const alone = await extract(await videoFile(INPUTS.ts), 'broadcast/alone.ts', { binaries: { ffmpeg: system.ffmpeg, ffprobe: crashing } });
  expect(alone).toMatchObject({ outcome: 'failed', reason: 'video could not be read: ffprobe was killed by SIGSEGV (it crashed on this file)' });
  const both = await extract(await videoFile(INPUTS.ts), 'broadcast/both.ts', { binaries: { ffmpeg: system.ffmpeg, ffprobe: crashing, secondProber: crashing } });
  expect(both).toMatchObject({ outcome: 'failed', reason: 'video could not be read: ffprobe was killed by SIGSEGV (it crashed on this file); the second ffprobe was killed by SIGSEGV too' });
  await drainQueue(local.clients.sqs, local.resources.queueUrl);
});

test('the container decides, not the suffix: an animated GIF named .mov is a video, a still GIF named .mp4 is not', async () => {
  expect(await extract(await videoFile(INPUTS.animatedGif), 'gifs/loop.mov')).toMatchObject({ outcome: 'queued', frames: 2 });
  expect(await extract(await videoFile(INPUTS.stillGif), 'gifs/still.mp4')).toMatchObject({ outcome: 'failed', reason: 'file is not a video (a single-frame GIF image)' });
  await drainQueue(local.clients.sqs, local.resources.queueUrl);
});

describe('playlists', () => {
  let hits: string[];
  let server: http.Server;
  let base: string;
  beforeAll(async () => {
    hits = [];
    server = http.createServer((req, res) => {
      hits.push(req.url!);
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test('an HLS or concat playlist pointing at other inputs, renamed .mp4, ends FAILED and reads nothing', async () => {
    const secret = join(mkdtempSync(join(tmpdir(), 'longsight-secret-')), 'secret.mp4');
    writeFileSync(secret, 'not for the job');
    const dir = mkdtempSync(join(tmpdir(), 'longsight-playlist-'));
    const hls = join(dir, 'hls.mp4');
    writeFileSync(hls, `#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n${base}/segment.ts\n#EXTINF:2,\nfile://${secret}\n#EXT-X-ENDLIST\n`);
    const concat = join(dir, 'concat.mp4');
    writeFileSync(concat, `ffconcat version 1.0\nfile '${secret}'\nfile '${base}/other.mp4'\n`);
    expect(await extract(hls, 'lists/hls.mp4')).toMatchObject({ outcome: 'failed', reason: 'file is not a video (HLS playlist)' });
    expect(await extract(concat, 'lists/concat.mp4')).toMatchObject({ outcome: 'failed', reason: 'file is not a video (ffmpeg concat playlist)' });
    expect(hits).toEqual([]);

    // And below the sniff: even with the HLS demuxer forced, the protocol whitelist lets ffprobe read
    // the playlist itself and nothing it names.
    const failure = await probeVideo(resolveBinaries().ffprobe, hls, { demuxer: 'hls' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(failure).toBeInstanceOf(ProbeFailure);
    expect((failure as ProbeFailure).stderr).toMatch(/not on whitelist|Protocol '\w+' not on whitelist|Invalid data/);
    expect(hits).toEqual([]);
  });
});
