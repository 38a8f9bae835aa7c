/**
 * Test videos, generated with the npm-shipped ffmpeg during the test run (never committed) and
 * cached under os.tmpdir() keyed by recipe, so a second run costs nothing.
 *
 * The encoders this ffmpeg build has (checked): libx264, libx265, libvpx-vp9, libvpx, aac, png.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveBinaries } from '../../lambda/extract-frames/binaries';
import { runProcess } from '../../lambda/extract-frames/process';
import { mapLimit } from '../../lib/map-limit';

export type Recipe =
  | { kind: 'ffmpeg'; ext: string; args: string[] }
  /** The first `fraction` of another recipe's bytes (a download cut short). */
  | { kind: 'truncate'; ext: string; of: Recipe; fraction: number }
  | { kind: 'bytes'; ext: string; hex?: string; random?: number; seed?: number }
  /** Another recipe's file under a different suffix (a PNG named .mp4). */
  | { kind: 'rename'; ext: string; of: Recipe }
  /** Another recipe's streams copied (no re-encode) into a new file with extra output options (e.g. a rotation tag). */
  | { kind: 'remux'; ext: string; of: Recipe; args: string[] }
  /** Another recipe's bytes with the first `replace.length` bytes at `find` (searched after `after`) overwritten. */
  | { kind: 'patch'; ext: string; of: Recipe; after: string; find: string; replace: string };

const lavfi = (src: string) => ['-f', 'lavfi', '-i', src];
const x264 = (gop: number, extra: string[] = []) => ['-c:v', 'libx264', '-preset', 'ultrafast', '-g', String(gop), '-pix_fmt', 'yuv420p', ...extra];

/** A video whose top half is white and bottom half black: rotation is visible in the frames. */
const halves = (w: number, h: number, rate: number, seconds: number) =>
  lavfi(`color=c=black:s=${w}x${h}:r=${rate}:d=${seconds},drawbox=x=0:y=0:w=${w}:h=${h / 2}:color=white:t=fill`);

export const RECIPES = {
  h264Mp4: { kind: 'ffmpeg', ext: '.mp4', args: [...lavfi('testsrc=size=320x240:rate=25:duration=4'), ...x264(25)] },
  h264Mov: { kind: 'ffmpeg', ext: '.mov', args: [...lavfi('testsrc=size=320x240:rate=25:duration=3'), ...x264(25)] },
  h264Mkv: { kind: 'ffmpeg', ext: '.mkv', args: [...lavfi('testsrc=size=320x240:rate=24:duration=3'), ...x264(24)] },
  h265Mp4: { kind: 'ffmpeg', ext: '.mp4', args: [...lavfi('testsrc=size=320x240:rate=25:duration=3'), '-c:v', 'libx265', '-preset', 'ultrafast', '-x265-params', 'log-level=error', '-tag:v', 'hvc1', '-pix_fmt', 'yuv420p'] },
  h265Mov: { kind: 'ffmpeg', ext: '.mov', args: [...lavfi('testsrc=size=320x240:rate=25:duration=3'), '-c:v', 'libx265', '-preset', 'ultrafast', '-x265-params', 'log-level=error', '-tag:v', 'hvc1', '-pix_fmt', 'yuv420p'] },
  h265Mkv: { kind: 'ffmpeg', ext: '.mkv', args: [...lavfi('testsrc=size=320x240:rate=25:duration=3'), '-c:v', 'libx265', '-preset', 'ultrafast', '-x265-params', 'log-level=error', '-pix_fmt', 'yuv420p'] },
  vp9Webm: { kind: 'ffmpeg', ext: '.webm', args: [...lavfi('testsrc=size=320x240:rate=25:duration=3'), '-c:v', 'libvpx-vp9', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '200k', '-pix_fmt', 'yuv420p'] },
  /** Variable frame rate: 20 frames 40 ms apart, then 10 frames 200 ms apart. */
  vfrMp4: {
    kind: 'ffmpeg',
    ext: '.mp4',
    args: [...lavfi('testsrc=size=320x240:rate=25:duration=1.2'), '-vf', "setpts='if(lt(N,20),N*0.04,0.8+(N-20)*0.2)/TB'", '-vsync', 'vfr', ...x264(10)],
  },
  /** 320x240 stored, top half white (rotated by DERIVED.rotated90Mp4). */
  halves320x240Mp4: { kind: 'ffmpeg', ext: '.mp4', args: [...halves(320, 240, 10, 2), ...x264(10)] },
  /** An awkward size (not a multiple of 16, 4 or 8 in either dimension). */
  odd1918x1078Mp4: { kind: 'ffmpeg', ext: '.mp4', args: [...lavfi('testsrc=size=1918x1078:rate=5:duration=2'), ...x264(10)] },
  /** Ten minutes, one keyframe a minute (long GOP), low resolution. */
  longGop10minMp4: { kind: 'ffmpeg', ext: '.mp4', args: [...lavfi('testsrc=size=160x120:rate=10:duration=600'), ...x264(600, ['-crf', '35'])] },
  /** Fine detail everywhere (a fractal zoom): natural-image-like content for the preprocessing tests. */
  mandel640x360Mp4: { kind: 'ffmpeg', ext: '.mp4', args: [...lavfi('mandelbrot=size=640x360:rate=5'), '-t', '1', ...x264(5)] },
  testsrc1280x720Mp4: { kind: 'ffmpeg', ext: '.mp4', args: [...lavfi('testsrc2=size=1280x720:rate=5:duration=1'), ...x264(5)] },
  testsrc1920x1080Mp4: { kind: 'ffmpeg', ext: '.mp4', args: [...lavfi('testsrc2=size=1920x1080:rate=5:duration=1'), ...x264(5)] },
  /** 30 s, one keyframe every 10 s, in MPEG-TS (no index: seeks bisect by timestamps), starting at 1.4 s as broadcast captures do. */
  longGopTs: { kind: 'ffmpeg', ext: '.ts', args: [...lavfi('testsrc=size=160x120:rate=25:duration=30'), ...x264(250), '-f', 'mpegts'] },
  oneFrameMp4: { kind: 'ffmpeg', ext: '.mp4', args: [...lavfi('testsrc=size=320x240:rate=25'), '-frames:v', '1', ...x264(1)] },
  audioOnlyMp4: { kind: 'ffmpeg', ext: '.mp4', args: [...lavfi('sine=frequency=440:duration=2'), '-c:a', 'aac', '-b:a', '64k'] },
  pngImage: { kind: 'ffmpeg', ext: '.png', args: [...lavfi('testsrc=size=320x240:rate=1'), '-frames:v', '1', '-c:v', 'png'] },
  zeroBytesMp4: { kind: 'bytes', ext: '.mp4', hex: '' },
  randomBytesMp4: { kind: 'bytes', ext: '.mp4', random: 64 * 1024, seed: 7 },
} satisfies Record<string, Recipe>;

export const DERIVED = {
  /** Half an mp4 whose index (moov) is at the end, as ffmpeg writes it without +faststart. */
  truncatedMp4: { kind: 'truncate', ext: '.mp4', of: RECIPES.h264Mp4, fraction: 0.5 },
  pngAsMp4: { kind: 'rename', ext: '.mp4', of: RECIPES.pngImage },
  /** The H.264 sample entry renamed to an unknown fourcc: no decoder exists for it. */
  unknownCodecMp4: { kind: 'patch', ext: '.mp4', of: RECIPES.h264Mp4, after: 'stsd', find: 'avc1', replace: 'xyzw' },
  /** An MP4 with its index first (+faststart) cut at 30%: the header is fine, most frames are missing. */
  truncatedFaststartMp4: {
    kind: 'truncate',
    ext: '.mp4',
    of: { kind: 'remux', ext: '.mp4', of: RECIPES.h264Mp4, args: ['-c', 'copy', '-movflags', '+faststart'] },
    fraction: 0.3,
  },
  /**
   * The halves video with a display matrix. This 2018 ffmpeg muxer writes `rotate=90` as a matrix
   * that ffprobe reads back as "rotation": 90 (counter-clockwise) / tag rotate=270: the test derives
   * its expectation from what ffprobe and ffmpeg's own autorotate say, not from this tag.
   */
  rotated90Mp4: { kind: 'remux', ext: '.mp4', of: RECIPES.halves320x240Mp4, args: ['-c', 'copy', '-metadata:s:v:0', 'rotate=90'] },
  /** The same stream in MPEG-PS (no index either) and in MP4 (an index: exact seeks). */
  longGopPs: { kind: 'remux', ext: '.mpg', of: RECIPES.longGopTs, args: ['-c', 'copy', '-f', 'mpeg'] },
  longGopMp4: { kind: 'remux', ext: '.mp4', of: RECIPES.longGopTs, args: ['-c', 'copy'] },
  /** Detailed 640x360 frames stored with a rotation: displayed as a 360x640 portrait. */
  rotatedMandelMp4: { kind: 'remux', ext: '.mp4', of: RECIPES.mandel640x360Mp4, args: ['-c', 'copy', '-metadata:s:v:0', 'rotate=90'] },
} satisfies Record<string, Recipe>;

export const CACHE_DIR = join(tmpdir(), 'longsight-test-videos');

function recipeHash(r: Recipe): string {
  return createHash('sha256').update(JSON.stringify(r)).digest('hex').slice(0, 16);
}

function deterministicBytes(n: number, seed: number): Buffer {
  const out = Buffer.alloc(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    // xorshift32: reproducible noise without a dependency.
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s & 0xff;
  }
  return out;
}

const inflight = new Map<string, Promise<string>>();

/** The path of the file a recipe makes (generated on first use, then cached). */
export function videoFile(recipe: Recipe, dir = CACHE_DIR): Promise<string> {
  const path = join(dir, `${recipeHash(recipe)}${recipe.ext}`);
  if (existsSync(path)) return Promise.resolve(path);
  let p = inflight.get(path);
  if (!p) {
    p = generate(recipe, path, dir).finally(() => inflight.delete(path));
    inflight.set(path, p);
  }
  return p;
}

async function ffmpeg(args: string[], what: string): Promise<void> {
  const r = await runProcess(resolveBinaries().ffmpeg, ['-hide_banner', '-nostdin', '-v', 'error', ...args], { timeoutMs: 600_000 });
  if (r.code !== 0) throw new Error(`ffmpeg could not ${what}: ${r.stderr}`);
}

async function generate(recipe: Recipe, path: string, dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const tmp = `${path}.${process.pid}.tmp${recipe.ext}`;
  switch (recipe.kind) {
    case 'ffmpeg':
      await ffmpeg([...recipe.args, '-y', tmp], `make a test video (${JSON.stringify(recipe.args)})`);
      break;
    case 'bytes':
      writeFileSync(tmp, recipe.random ? deterministicBytes(recipe.random, recipe.seed ?? 1) : Buffer.from(recipe.hex ?? '', 'hex'));
      break;
    case 'truncate': {
      const buf = readFileSync(await videoFile(recipe.of, dir));
      writeFileSync(tmp, buf.subarray(0, Math.floor(buf.length * recipe.fraction)));
      break;
    }
    case 'rename':
      writeFileSync(tmp, readFileSync(await videoFile(recipe.of, dir)));
      break;
    case 'remux':
      await ffmpeg(['-i', await videoFile(recipe.of, dir), ...recipe.args, '-y', tmp], 'remux');
      break;
    case 'patch': {
      const buf = readFileSync(await videoFile(recipe.of, dir));
      const after = buf.indexOf(recipe.after);
      const at = after < 0 ? -1 : buf.indexOf(recipe.find, after);
      if (at < 0) throw new Error(`patch: "${recipe.find}" after "${recipe.after}" not found`);
      Buffer.from(recipe.replace, 'latin1').copy(buf, at);
      writeFileSync(tmp, buf);
      break;
    }
  }
  renameSync(tmp, path);
  return path;
}

/** Generates several recipes, at most `concurrency` ffmpeg processes at a time. */
export async function videoFiles<K extends string>(recipes: Record<K, Recipe>, concurrency = 2): Promise<Record<K, string>> {
  const entries = Object.entries(recipes) as [K, Recipe][];
  const paths = await mapLimit(entries, concurrency, ([, recipe]) => videoFile(recipe));
  return Object.fromEntries(entries.map(([name], i) => [name, paths[i]])) as Record<K, string>;
}
