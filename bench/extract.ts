/**
 * npm run bench:extract — frame extraction against its floor.
 *
 * Video: a generated 1-hour 1080p25 H.264 file with a long GOP (one keyframe every 10 s, 250
 * frames; x264 ultrafast, testsrc), made once into .cache/bench/ (a 60 s segment encoded, then
 * joined 60 times without re-encoding).
 *
 * For N = 64 and 256 frames (LLaVA-NeXT's linspace sampling):
 *  - floor:  ONE ffmpeg process doing the same seeks and decodes to the null muxer (the concat
 *            demuxer with one inpoint/outpoint entry per sampled frame: each entry seeks to the
 *            keyframe before the frame and decodes up to it), no resize, no encode, no upload;
 *  - ours:   lambda/extract-frames' extractor (per-frame seek + decode + 384x384 bicubic resize +
 *            JPEG q95), timestamps checked;
 *  - the same two through the embedded S3 server via a presigned URL (ranged HTTP reads);
 *  - the whole handler through the embedded servers (probe, extract, upload frames + manifest,
 *    DynamoDB item, SQS message).
 * Floor and ours run alternately in the same process run; ratio = ours / floor.
 */
import { existsSync, mkdirSync, writeFileSync, statSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { resolveBinaries } from '../lambda/extract-frames/binaries';
import { runProcess } from '../lambda/extract-frames/process';
import { probeVideo } from '../lambda/extract-frames/probe';
import { planSamples, type SamplePoint } from '../lambda/extract-frames/frame-sampler';
import { extractFrames } from '../lambda/extract-frames/frame-extractor';
import { createExtractHandler } from '../lambda/extract-frames/handler';
import { ExtractRuntimeConfigSchema } from '../lib/contracts/env-config';
import { createLogger } from '../lib/log';
import { startLocalAws } from '../test/support/local-aws';
import { uploadObject } from '../test/support/s3-upload';
import { s3Event } from '../test/support/s3-event';
import { drainQueue } from '../test/support/queue';

const CACHE = resolve(__dirname, '..', '.cache', 'bench');
const VIDEO = join(CACHE, 'long-1h-1080p25-gop250.mp4');
const FRAME_COUNTS = (process.env.BENCH_FRAMES ?? '64,256').split(',').map(Number);
const bin = resolveBinaries();

const say = (msg: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${msg}\n`);

async function ffmpeg(args: string[], what: string): Promise<void> {
  const r = await runProcess(bin.ffmpeg, ['-hide_banner', '-nostdin', '-v', 'error', ...args], { timeoutMs: 3_600_000 });
  if (r.code !== 0) throw new Error(`${what} failed: ${r.stderr.slice(-2000)}`);
}

async function ensureVideo(): Promise<void> {
  if (existsSync(VIDEO)) return;
  mkdirSync(CACHE, { recursive: true });
  const seg = join(CACHE, 'segment-60s.mp4');
  say('generating the benchmark video (once): encoding a 60 s 1080p segment...');
  await ffmpeg(
    ['-f', 'lavfi', '-i', 'testsrc=size=1920x1080:rate=25', '-t', '60', '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '30', '-g', '250', '-keyint_min', '250', '-sc_threshold', '0', '-pix_fmt', 'yuv420p', '-y', seg],
    'encoding the segment',
  );
  const list = join(CACHE, 'segments.txt');
  writeFileSync(list, Array.from({ length: 60 }, () => `file '${seg}'`).join('\n') + '\n');
  say('joining 60 copies (stream copy) into 1 hour...');
  const tmp = `${VIDEO}.tmp.mp4`;
  await ffmpeg(['-f', 'concat', '-safe', '0', '-i', list, '-c', 'copy', '-movflags', '+faststart', '-y', tmp], 'joining');
  const { renameSync } = await import('node:fs');
  renameSync(tmp, VIDEO);
  rmSync(seg);
  rmSync(list);
}

/** The floor: one ffmpeg, the same seeks (concat entries), decode to the null muxer. */
async function floor(input: string, samples: readonly SamplePoint[], frameSeconds: number): Promise<number> {
  const list = join(os.tmpdir(), `longsight-floor-${process.pid}.ffconcat`);
  const esc = input.replace(/'/g, "'\\''");
  writeFileSync(list, 'ffconcat version 1.0\n' + samples.map((s) => `file '${esc}'\ninpoint ${s.seek.toFixed(6)}\noutpoint ${(s.time + frameSeconds / 2).toFixed(6)}\n`).join(''));
  const t = performance.now();
  const r = await runProcess(bin.ffmpeg, ['-hide_banner', '-nostdin', '-v', 'quiet', '-protocol_whitelist', 'file,http,https,tcp,tls', '-f', 'concat', '-safe', '0', '-i', list, '-map', '0:v', '-f', 'null', '-'], { timeoutMs: 3_600_000, maxStderrChars: 4096 });
  const ms = performance.now() - t;
  rmSync(list);
  if (r.code !== 0) throw new Error(`floor ffmpeg failed (${r.code}): ${r.stderr}`);
  return ms;
}

async function ours(input: string, samples: readonly SamplePoint[], streamIndex: number, label: string): Promise<number> {
  const t = performance.now();
  let last = 0;
  const r = await extractFrames({
    ffmpeg: bin.ffmpeg,
    input,
    streamIndex,
    rotation: 0,
    size: 384,
    samples,
    format: 'jpeg',
    jpegQuality: 95,
    onProgress: (d, n) => {
      if (d - last >= n / 4 || d === n) {
        last = d;
        say(`  ${label}: ${d}/${n} frames`);
      }
    },
  });
  const ms = performance.now() - t;
  if (r.frames.length !== samples.length) throw new Error(`${label}: ${r.frames.length} frames for ${samples.length} samples`);
  r.frames.forEach((f, i) => {
    if (Math.abs(f.timestamp - samples[i].time) > 1e-3) throw new Error(`${label}: frame ${i} at ${f.timestamp}, expected ${samples[i].time}`);
  });
  return ms;
}

interface Row {
  frames: number;
  path: string;
  floorS: number;
  oursS: number;
  handlerS?: number;
}

async function main(): Promise<void> {
  await ensureVideo();
  const size = statSync(VIDEO).size;
  const probe = await probeVideo(bin.ffprobe, VIDEO);
  const v = probe.video!;
  say(`video: ${v.codec} ${v.width}x${v.height} ${v.frameRate} fps, ${v.frameCount} frames, ${probe.durationSeconds} s, ${(size / 2 ** 20).toFixed(1)} MiB`);

  say('starting the embedded S3/SQS/DynamoDB servers and uploading the video...');
  const local = await startLocalAws();
  const up = await uploadObject(local.clients.s3, local.resources.bucket, 'bench/long-1h.mp4', VIDEO);
  const url = await getSignedUrl(local.clients.s3, new GetObjectCommand({ Bucket: up.bucket, Key: up.key }), { expiresIn: 3600 });

  const rows: Row[] = [];
  try {
    for (const n of FRAME_COUNTS) {
      const samples = planSamples({ durationSeconds: v.durationSeconds!, frameCount: v.frameCount, frameRate: v.frameRate }, n);
      const frameSeconds = 1 / (v.frameRate ?? 25);
      for (const [path, input] of [
        ['local file', VIDEO],
        ['embedded S3, presigned URL', url],
      ] as const) {
        say(`N=${n}, ${path}: floor...`);
        const f = await floor(input, samples, frameSeconds);
        say(`N=${n}, ${path}: floor ${(f / 1000).toFixed(1)} s; ours...`);
        const o = await ours(input, samples, v.index, `N=${n} ${path}`);
        say(`N=${n}, ${path}: ours ${(o / 1000).toFixed(1)} s (ratio ${(o / f).toFixed(2)})`);
        rows.push({ frames: n, path, floorS: f / 1000, oursS: o / 1000 });
      }
      // The whole handler: probe, extract, upload frames + manifest, item, message.
      const key = `bench/long-1h-${n}.mp4`;
      const upN = await uploadObject(local.clients.s3, local.resources.bucket, key, VIDEO);
      const handler = createExtractHandler({
        clients: local.clients,
        config: ExtractRuntimeConfigSchema.parse({ extraction: { frames: n }, inference: {}, questions: ['Describe this video in detail.'] }),
        jobsTable: local.resources.jobsTable,
        queueUrl: local.resources.queueUrl,
        logger: createLogger({ component: 'bench' }, () => {}),
      });
      say(`N=${n}: whole handler through the embedded servers...`);
      const t = performance.now();
      const { results } = await handler(s3Event(upN));
      const h = performance.now() - t;
      if (results[0]?.outcome !== 'queued') throw new Error(`handler: ${JSON.stringify(results)}`);
      await drainQueue(local.clients.sqs, local.resources.queueUrl);
      say(`N=${n}: handler ${(h / 1000).toFixed(1)} s`);
      rows[rows.length - 1].handlerS = h / 1000;
    }
  } finally {
    await local.stop();
  }

  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const lines = [
    `Machine: ${os.availableParallelism?.() ?? os.cpus().length} cores (${cpu}), load average at end ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}; extractor concurrency = cores.`,
    '',
    '| frames | input | floor: 1 ffmpeg, same seeks+decodes → null (s) | ours: seek+decode+resize 384²+JPEG (s) | ratio | whole handler (s) |',
    '|---:|---|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.frames} | ${r.path} | ${r.floorS.toFixed(1)} | ${r.oursS.toFixed(1)} | **${(r.oursS / r.floorS).toFixed(2)}×** | ${r.handlerS !== undefined ? r.handlerS.toFixed(1) : ''} |`),
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

main().catch((e) => {
  process.stderr.write(`bench:extract failed: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
