/**
 * npm run bench:extract — frame extraction against two ffmpeg-only baselines, and the measurements
 * the seek-or-pass rule (lambda/extract-frames/extraction-strategy.ts) is derived from.
 *
 * Videos (generated once into .cache/bench/, never committed): H.264 x264 ultrafast, testsrc2,
 * 25 fps, one keyframe every 10 s (250 frames), crf 36; a 60 s segment encoded, then joined by
 * stream copy:
 *   - 20 minutes of 1280x720 (30,000 frames, ~2.4 Mbit/s)
 *   - 60 minutes of 1920x1080 (90,000 frames, ~4.9 Mbit/s)
 *
 * 1. Calibration (the cost model's constants), per file, medians of 3: CPU per decoded frame (one
 *    ffmpeg, one thread, 20 s decoded to the null muxer) and the fixed CPU of one seek (ffmpeg
 *    seeking exactly onto a keyframe, one rgb24 frame out: nothing to decode but that frame).
 * 2. Comparison, for N = 64 and 256 (LLaVA-NeXT linspace sample times), from disk and through the
 *    embedded S3 server (presigned URL), BENCH_RUNS runs (default 3), the three sides alternating
 *    (the order rotates every run):
 *    - ours: sampleFrames (the Lambda's own code: keyframe probe, seek-or-pass choice, decode,
 *      rgb24, Pillow-exact resize to 384x384, PNG), frames written to a temporary folder;
 *    - seeks: N ffmpeg processes, one per core at a time, `-threads 1 -ss T -i … -frames:v 1
 *      -vf scale=384:384:flags=bicubic` → PNG;
 *    - pass: one ffmpeg (its default threads) decoding the whole file, `select` keeping the same
 *      frames, `scale=384:384:flags=bicubic` → N PNGs.
 *    A baseline whose first run is over 3x slower than the other baseline is not repeated.
 *    Wall time and CPU time (this process and its children: ffmpeg, sharp's threads; not the S3
 *    server, which runs in its own process, bench/s3-server.ts, so that this one stays small:
 *    every ffmpeg start forks it); medians; ratio = ours / the better baseline, per measure.
 * Env: BENCH_FRAMES=64,256 BENCH_RUNS=3 BENCH_FILES=720p,1080p BENCH_INPUTS=disk,s3
 *      BENCH_SIDES=ours,seeks,pass BENCH_SKIP_CALIBRATION=1
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { spawn } from 'node:child_process';
import { resolveBinaries } from '../lambda/extract-frames/binaries';
import { runProcess } from '../lambda/extract-frames/process';
import { probeVideo, type VideoStreamInfo } from '../lambda/extract-frames/probe';
import { planSamples, type SamplePoint } from '../lambda/extract-frames/frame-sampler';
import { ffmpegCommand, pickExpression } from '../lambda/extract-frames/frame-extractor';
import { sampleFrames } from '../lambda/extract-frames/sample-frames';
import { MEASURED_COSTS } from '../lambda/extract-frames/extraction-strategy';
import { mapLimit } from '../lib/map-limit';

const CACHE = resolve(__dirname, '..', '.cache', 'bench');
const FILES = {
  '720p': { name: 'bench-20min-720p25-gop250.mp4', size: '1280x720', minutes: 20 },
  '1080p': { name: 'bench-60min-1080p25-gop250.mp4', size: '1920x1080', minutes: 60 },
} as const;
type FileKey = keyof typeof FILES;
const list = (v: string | undefined, d: string) => (v ?? d).split(',').map((s) => s.trim()).filter(Boolean);
const FRAME_COUNTS = list(process.env.BENCH_FRAMES, '64,256').map(Number);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const WHICH = list(process.env.BENCH_FILES, '720p,1080p') as FileKey[];
const INPUTS = list(process.env.BENCH_INPUTS, 'disk,s3');
/** Which sides to run (default all three): a follow-up can leave out a baseline known to be far slower. */
const SIDES = list(process.env.BENCH_SIDES, 'ours,seeks,pass');
const CORES = os.availableParallelism?.() ?? os.cpus().length;
const bin = resolveBinaries();

const say = (msg: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${msg}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ')[0];

/** CPU seconds of this process (all threads) and of its waited-for children, from /proc. */
function cpuSeconds(): number {
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  // After "pid (comm) ": state is field 3, so utime/stime/cutime/cstime (14-17) are at 11-14.
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
}

async function timed<T>(fn: () => Promise<T>): Promise<{ wall: number; cpu: number; value: T }> {
  const c = cpuSeconds();
  const t = performance.now();
  const value = await fn();
  return { wall: (performance.now() - t) / 1000, cpu: cpuSeconds() - c, value };
}

async function ffmpeg(args: string[], what: string): Promise<void> {
  const r = await runProcess(bin.ffmpeg, ['-hide_banner', '-nostdin', '-v', 'error', ...args], { timeoutMs: 3_600_000 });
  if (r.code !== 0) throw new Error(`${what} failed: ${r.stderr.slice(-2000)}`);
}

async function ensureVideo(key: FileKey): Promise<string> {
  const f = FILES[key];
  const file = join(CACHE, f.name);
  if (existsSync(file)) return file;
  mkdirSync(CACHE, { recursive: true });
  const seg = join(CACHE, `segment-${key}.mp4`);
  say(`generating ${f.name} (once): a 60 s segment, joined ${f.minutes} times...`);
  await ffmpeg(['-f', 'lavfi', '-i', `testsrc2=size=${f.size}:rate=25`, '-t', '60', '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '36', '-g', '250', '-keyint_min', '250', '-sc_threshold', '0', '-pix_fmt', 'yuv420p', '-y', seg], 'encoding the segment');
  const listFile = join(CACHE, `segments-${key}.txt`);
  writeFileSync(listFile, Array.from({ length: f.minutes }, () => `file '${seg}'`).join('\n') + '\n');
  await ffmpeg(['-f', 'concat', '-safe', '0', '-i', listFile, '-c', 'copy', '-movflags', '+faststart', '-y', `${file}.tmp.mp4`], 'joining');
  renameSync(`${file}.tmp.mp4`, file);
  rmSync(seg);
  rmSync(listFile);
  return file;
}

// ---------------------------------------------------------------- calibration

interface Calibration {
  file: FileKey;
  megapixels: number;
  decodeMsPerFrame: number;
  seekFixedMs: number;
}

async function calibrate(key: FileKey, file: string, v: VideoStreamInfo): Promise<Calibration> {
  const decodeRuns: number[] = [];
  const seekRuns: number[] = [];
  for (let run = 0; run < 3; run++) {
    // 20 s (500 frames) from a keyframe, one thread, to the null muxer.
    const at = 300 + run * 60;
    const d = await timed(() => ffmpeg(['-threads', '1', '-ss', String(at), '-i', file, '-t', '20', '-map', `0:${v.index}`, '-f', 'null', '-'], 'decode'));
    decodeRuns.push((d.cpu * 1000) / 500);
    // Seeks exactly onto keyframes (multiples of 10 s): the fixed part plus one frame.
    const req = { ffmpeg: bin.ffmpeg, input: file, streamIndex: v.index, rotation: 0 as const, width: v.width, height: v.height, size: 384, format: 'png' as const, jpegQuality: 95 };
    const s = await timed(() => mapLimit([...Array(8).keys()], 1, (i) => runProcess(bin.ffmpeg, ffmpegCommand(req, { seek: 600 + i * 10 + run * 100, maxFrames: 1 }))));
    seekRuns.push((s.cpu * 1000) / 8);
  }
  const decodeMsPerFrame = median(decodeRuns);
  return { file: key, megapixels: (v.width * v.height) / 1e6, decodeMsPerFrame, seekFixedMs: median(seekRuns) - decodeMsPerFrame };
}

// ---------------------------------------------------------------- the three sides

async function ours(input: string, v: VideoStreamInfo, durationSeconds: number, n: number, out: string) {
  const r = await sampleFrames({ ffmpeg: bin.ffmpeg, ffprobe: bin.ffprobe, input, video: v, durationSeconds, frames: n, extraction: { imageSize: 384, format: 'png', jpegQuality: 95 } });
  r.frames.forEach((f, i) => writeFileSync(join(out, `frame-${String(i).padStart(5, '0')}.png`), f.data));
  return r;
}

async function seekBaseline(input: string, v: VideoStreamInfo, samples: readonly SamplePoint[], out: string) {
  await mapLimit(samples, CORES, (s, i) =>
    ffmpeg(['-threads', '1', '-ss', s.seek.toFixed(6), '-i', input, '-map', `0:${v.index}`, '-frames:v', '1', '-vf', 'scale=384:384:flags=bicubic', '-y', join(out, `frame-${String(i).padStart(5, '0')}.png`)], 'seek baseline'),
  );
}

async function passBaseline(input: string, v: VideoStreamInfo, samples: readonly SamplePoint[], out: string) {
  const select = pickExpression(samples.map((s) => s.seek), 0);
  await ffmpeg(['-i', input, '-map', `0:${v.index}`, '-vf', `${select},scale=384:384:flags=bicubic`, '-vsync', '0', '-frames:v', String(samples.length), '-y', join(out, 'frame-%05d.png')], 'pass baseline');
}

/**
 * A baseline whose first run took over 3x the other baseline's cannot be the better one: it is
 * not repeated (its one figure is reported as such), which keeps the 60-minute file's full decode
 * from tripling the benchmark's time on a shared machine.
 */
function outclassed(cell: Cell, side: 'seeks' | 'pass'): boolean {
  const other = side === 'seeks' ? 'pass' : 'seeks';
  const mine = cell.runs[side][0];
  const theirs = cell.runs[other][0];
  return Boolean(mine && theirs && mine.wall > 3 * theirs.wall && mine.cpu > 3 * theirs.cpu);
}

interface Cell {
  file: FileKey;
  frames: number;
  input: string;
  mode: string;
  runs: Record<'ours' | 'seeks' | 'pass', { wall: number; cpu: number }[]>;
  loads: string[];
}

/** bench/s3-server.ts in a child process: the embedded S3 server with the videos uploaded. */
async function startS3Server(paths: string[]): Promise<{ urls: Record<string, string>; stop(): void }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 's3-server.ts'), ...paths], { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolveLine, reject) => {
    let buf = '';
    child.stdout.on('data', (c: Buffer) => {
      buf += c.toString();
      if (buf.includes('\n')) resolveLine(buf.split('\n')[0]);
    });
    child.on('exit', (code) => reject(new Error(`the S3 server exited (${code}) before it was ready`)));
  });
  return { urls: (JSON.parse(line) as { urls: Record<string, string> }).urls, stop: () => child.stdin.end() };
}

async function main(): Promise<void> {
  const files = Object.fromEntries(await Promise.all(WHICH.map(async (k) => [k, await ensureVideo(k)] as const))) as Record<FileKey, string>;
  const probes = Object.fromEntries(await Promise.all(WHICH.map(async (k) => [k, await probeVideo(bin.ffprobe, files[k])] as const)));
  say(`${CORES} cores, load average ${load()}; cost constants in the code: ${JSON.stringify(MEASURED_COSTS)}`);

  const calibrations: Calibration[] = [];
  if (!process.env.BENCH_SKIP_CALIBRATION) {
    for (const k of WHICH) {
      const c = await calibrate(k, files[k], probes[k].video!);
      calibrations.push(c);
      say(`calibration ${k}: decode ${c.decodeMsPerFrame.toFixed(3)} ms/frame (${(c.decodeMsPerFrame / c.megapixels).toFixed(3)} ms/MP), seek fixed ${c.seekFixedMs.toFixed(1)} ms`);
    }
  }

  const s3 = INPUTS.includes('s3') ? await startS3Server(WHICH.map((k) => files[k])) : undefined;
  const urls = Object.fromEntries(WHICH.map((k) => [k, s3?.urls[files[k]]])) as Partial<Record<FileKey, string>>;

  const cells: Cell[] = [];
  try {
    for (const k of WHICH) {
      const v = probes[k].video!;
      const durationSeconds = v.durationSeconds ?? probes[k].durationSeconds!;
      for (const n of FRAME_COUNTS) {
        const samples = planSamples({ durationSeconds, frameCount: v.frameCount, frameRate: v.frameRate }, n);
        for (const inputName of INPUTS) {
          const input = inputName === 's3' ? urls[k]! : files[k];
          const cell: Cell = { file: k, frames: n, input: inputName === 's3' ? 'embedded S3, presigned URL' : 'local file', mode: '', runs: { ours: [], seeks: [], pass: [] }, loads: [] };
          const sides = {
            ours: async (out: string) => {
              const r = await ours(input, v, durationSeconds, n, out);
              if (r.frames.length !== n) throw new Error(`ours: ${r.frames.length} frames for ${n}`);
              r.frames.forEach((f, i) => {
                if (Math.abs(f.timestamp - samples[i].time) > 1e-3) throw new Error(`ours: frame ${i} at ${f.timestamp}, planned ${samples[i].time}`);
              });
              cell.mode = r.strategy.mode;
            },
            seeks: (out: string) => seekBaseline(input, v, samples, out),
            pass: (out: string) => passBaseline(input, v, samples, out),
          };
          const order = ['ours', 'seeks', 'pass'] as const;
          for (let run = 0; run < RUNS; run++) {
            for (let j = 0; j < order.length; j++) {
              const side = order[(run + j) % order.length];
              if (!SIDES.includes(side) || (side !== 'ours' && outclassed(cell, side))) continue;
              const out = mkdtempSync(join(os.tmpdir(), `bench-${side}-`));
              cell.loads.push(load());
              const t = await timed(() => sides[side](out));
              rmSync(out, { recursive: true, force: true });
              cell.runs[side].push({ wall: t.wall, cpu: t.cpu });
              say(`${k} N=${n} ${inputName} run ${run + 1}: ${side} ${t.wall.toFixed(1)} s wall, ${t.cpu.toFixed(1)} s CPU${side === 'ours' ? ` (${cell.mode})` : ''}`);
            }
          }
          cells.push(cell);
        }
      }
    }
  } finally {
    s3?.stop();
  }

  const med = (c: Cell, side: keyof Cell['runs'], m: 'wall' | 'cpu') => median(c.runs[side].map((r) => r[m]));
  const lines = [
    `| file | frames | input | ours: mode | ours wall / CPU (s) | N seeks wall / CPU (s) | one pass wall / CPU (s) | wall ratio | CPU ratio |`,
    `|---|---:|---|---|---:|---:|---:|---:|---:|`,
    ...cells.map((c) => {
      const best = (m: 'wall' | 'cpu') => Math.min(...(['seeks', 'pass'] as const).filter((b) => c.runs[b].length).map((b) => med(c, b, m)));
      const cellOf = (side: keyof Cell['runs']) => (c.runs[side].length ? `${med(c, side, 'wall').toFixed(1)} / ${med(c, side, 'cpu').toFixed(1)}${c.runs[side].length < RUNS ? ` (${c.runs[side].length} run)` : ''}` : 'not run');
      return `| ${FILES[c.file].minutes} min ${FILES[c.file].size} | ${c.frames} | ${c.input} | ${c.mode} | ${cellOf('ours')} | ${cellOf('seeks')} | ${cellOf('pass')} | **${(med(c, 'ours', 'wall') / best('wall')).toFixed(2)}×** | **${(med(c, 'ours', 'cpu') / best('cpu')).toFixed(2)}×** |`;
    }),
  ];
  const calLines = calibrations.map((c) => `| ${c.file} | ${c.megapixels.toFixed(2)} | ${c.decodeMsPerFrame.toFixed(3)} | ${(c.decodeMsPerFrame / c.megapixels).toFixed(3)} | ${c.seekFixedMs.toFixed(1)} |`);
  process.stdout.write(
    [
      `Calibration (median of 3): | file | MP | decode ms/frame | ms/MP | seek fixed ms |`,
      ...calLines,
      '',
      `${RUNS} runs per side, alternating; medians. Load average at each start: ${[...new Set(cells.flatMap((c) => c.loads))].join(', ')}`,
      ...lines,
      '',
    ].join('\n'),
  );
  writeFileSync(join(CACHE, `extract-results-${new Date().toISOString().replace(/[:.]/g, '-')}.json`), JSON.stringify({ cores: CORES, calibrations, cells }, null, 2));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
