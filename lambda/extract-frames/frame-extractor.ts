/**
 * Decodes the sampled frames with ffmpeg, reading the video through its (presigned) URL: each
 * frame is one input seek (`-ss` before `-i`: ffmpeg seeks the demuxer to the keyframe before the
 * time with HTTP Range requests, decodes forward and keeps the first frame at or after it), so
 * only the bytes of the GOPs it needs cross the network and nothing of the video touches disk.
 *
 * Each frame is resized to size x size the way LLaVA-OneVision's video processor does it
 * (LlavaOnevisionVideoProcessor: size {height: 384, width: 384}, resample BICUBIC, the aspect ratio
 * not kept): swscale's bicubic with B=0, C=0.5 is the Keys/Catmull-Rom cubic (a = -0.5) that PIL's
 * BICUBIC uses, and like PIL it widens the kernel when downscaling (antialiasing). swscale resizes
 * in YUV and converts to RGB in the same pass (PIL resizes RGB): differences are rounding-level.
 * Rotation comes from the probe (display matrix) and is applied explicitly (-noautorotate), so the
 * result does not depend on the ffmpeg build's autorotate rules.
 */
import os from 'node:os';
import sharp from 'sharp';
import { mapLimit } from '../../lib/map-limit';
import { inputArgs } from './input-restrictions';
import { runProcess } from './process';
import type { SamplePoint } from './frame-sampler';

export type FrameFormat = 'jpeg' | 'png';

export interface FrameRequest {
  ffmpeg: string;
  /** URL (presigned GET) or local path. */
  input: string;
  /** ffprobe's index of the video stream to decode. */
  streamIndex: number;
  rotation: 0 | 90 | 180 | 270;
  size: number;
  /** Decoder threads per ffmpeg process (0 = ffmpeg decides). */
  threads?: number;
  /** The demuxer the container was sniffed as (input-restrictions.ts); absent: ffmpeg probes. */
  demuxer?: string;
}

/** Clockwise rotation as ffmpeg filters (transpose=clock is 90° clockwise). */
export function rotationFilters(rotation: 0 | 90 | 180 | 270): string[] {
  switch (rotation) {
    case 90:
      return ['transpose=clock'];
    case 180:
      return ['hflip', 'vflip'];
    case 270:
      return ['transpose=cclock'];
    default:
      return [];
  }
}

/**
 * The filter chain: showinfo (reports the decoded frame's timestamp), the PIL-BICUBIC-equivalent
 * resize, then rotation. Rotating after the square resize is the same picture as before it (the
 * resize is separable per axis) and moves 384x384 pixels instead of the full frame.
 */
export function frameFilter(size: number, rotation: 0 | 90 | 180 | 270): string {
  return ['showinfo', `scale=${size}:${size}:flags=bicubic+accurate_rnd+full_chroma_int:param0=0:param1=0.5`, ...rotationFilters(rotation), 'format=rgb24'].join(',');
}

/**
 * ffmpeg's command line for `req`: `seekArgs` go before the input (an input seek), `outputArgs`
 * after the stream selection; the frames come out as raw RGB on stdout.
 */
function ffmpegArgs(req: FrameRequest, seekArgs: string[], outputArgs: string[]): string[] {
  const args = ['-hide_banner', '-nostdin', '-nostats', '-v', 'info', '-noautorotate'];
  if (req.threads !== undefined) args.push('-threads', String(req.threads));
  args.push(...inputArgs(req.input, req.demuxer), ...seekArgs, '-i', req.input, '-map', `0:${req.streamIndex}`, '-an', '-sn', '-dn', ...outputArgs);
  args.push('-vf', frameFilter(req.size, req.rotation), '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1');
  return args;
}

export function frameArgs(req: FrameRequest, seekSeconds: number): string[] {
  return ffmpegArgs(req, ['-ss', seekSeconds.toFixed(6)], ['-frames:v', '1']);
}

/** showinfo's report of a decoded frame's presentation time. */
const PTS_TIME = /pts_time:\s*(-?[\d.]+(?:e[-+]?\d+)?)/;

/** ffmpeg's messages that mean "the network or the server failed", not "the file is bad". */
const TRANSIENT = [
  /Server returned 5\d\d/i,
  /Server returned 40[38]/i, // expired presigned URL, request timeout: a retry gets a new one
  /Server returned 429/i,
  /Connection refused/i,
  /Connection reset/i,
  /Connection timed out/i,
  /timed out/i,
  /Network is unreachable/i,
  /Temporary failure in name resolution/i,
  /Broken pipe/i,
];

export function isTransientFfmpegError(stderr: string): boolean {
  return TRANSIENT.some((re) => re.test(stderr));
}

export class TransientMediaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TransientMediaError';
  }
}

export interface RawFrame {
  /** Presentation time of the decoded frame, seconds from the start of the video. */
  timestamp: number;
  rgb: Buffer;
}

export type FrameOutcome = { ok: true; frame: RawFrame } | { ok: false; why: string };

/** Decodes one frame at `seek`. No frame (past the end, undecodable) is an outcome; a network failure throws. */
export async function decodeFrame(req: FrameRequest, seek: number, timeoutMs = 120_000): Promise<FrameOutcome> {
  const expected = req.size * req.size * 3;
  const r = await runProcess(req.ffmpeg, frameArgs(req, seek), { timeoutMs, maxStderrChars: 16 * 1024 });
  if (r.timedOut) throw new TransientMediaError(`ffmpeg timed out after ${timeoutMs} ms decoding the frame at ${seek.toFixed(3)} s`);
  if (r.code !== 0) {
    if (isTransientFfmpegError(r.stderr)) throw new TransientMediaError(`ffmpeg could not read the video: ${lastLines(r.stderr)}`);
    return { ok: false, why: lastLines(r.stderr) || `ffmpeg exited with code ${r.code}` };
  }
  if (r.stdout.length < expected) return { ok: false, why: `no frame at ${seek.toFixed(3)} s (${lastLines(r.stderr) || 'end of stream'})` };
  // Timestamps after an input seek start at 0 at the seek point (ffmpeg subtracts start time and -ss).
  const m = PTS_TIME.exec(r.stderr);
  const relative = m ? Number(m[1]) : 0;
  return { ok: true, frame: { timestamp: Math.max(0, seek + relative), rgb: r.stdout.subarray(0, expected) } };
}

function lastLines(stderr: string, n = 2): string {
  return stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/^(Input|Output|Stream|Metadata|Duration|\w+\s*:|Press|\[Parsed_showinfo)/.test(l))
    .slice(-n)
    .join(' | ');
}

export async function encodeFrame(rgb: Buffer, size: number, format: FrameFormat, jpegQuality: number): Promise<Buffer> {
  const img = sharp(rgb, { raw: { width: size, height: size, channels: 3 } });
  // 4:4:4 chroma: the model sees colour edges at full resolution, as in the decoded RGB frame.
  return format === 'jpeg' ? img.jpeg({ quality: jpegQuality, chromaSubsampling: '4:4:4' }).toBuffer() : img.png({ compressionLevel: 6 }).toBuffer();
}

export interface EncodedFrame {
  /** Position in the sample plan. */
  sample: number;
  timestamp: number;
  data: Buffer;
}

export interface ExtractResult {
  frames: EncodedFrame[];
  /** Samples that produced no frame, with ffmpeg's words. */
  missing: { sample: number; seek: number; why: string }[];
  /**
   * Set (to the frames the stream really has) when decodeAllFrames found far more frames than the
   * container stated: the frames it could keep would cover only the start, so it returns none.
   */
  overflowFrames?: number;
}

export interface ExtractOptions extends FrameRequest {
  samples: readonly SamplePoint[];
  format: FrameFormat;
  jpegQuality: number;
  /** ffmpeg processes at once (default: the CPU count). */
  concurrency?: number;
  frameTimeoutMs?: number;
  onProgress?: (done: number, total: number) => void;
}

/**
 * Decodes and encodes every sample, `concurrency` ffmpeg processes at a time (one seek each: the
 * cost is the decode from the previous keyframe, the same as any seeking reader pays).
 */
export async function extractFrames(opts: ExtractOptions): Promise<ExtractResult> {
  const concurrency = opts.concurrency ?? (os.availableParallelism?.() ?? os.cpus().length);
  let done = 0;
  const outcomes = await mapLimit(opts.samples, concurrency, async (point, sample) => {
    const outcome = await decodeFrame(opts, point.seek, opts.frameTimeoutMs);
    const result = outcome.ok
      ? { frame: { sample, timestamp: outcome.frame.timestamp, data: await encodeFrame(outcome.frame.rgb, opts.size, opts.format, opts.jpegQuality) } }
      : { missing: { sample, seek: point.seek, why: outcome.why } };
    opts.onProgress?.(++done, opts.samples.length);
    return result;
  });
  return {
    frames: outcomes.flatMap((o) => (o.frame ? [o.frame] : [])),
    missing: outcomes.flatMap((o) => (o.missing ? [o.missing] : [])),
  };
}

export interface DecodeAllOptions extends FrameRequest {
  format: FrameFormat;
  jpegQuality: number;
  /** Keep at most this many frames, chosen with the sampler's rule over the frames decoded. */
  maxFrames: number;
  /** Chooses `n` of `count` frame indices (the sampler's linspace). */
  choose: (count: number, n: number) => number[];
  /** Keep only these frames (indices in decode order); the others are decoded and dropped. */
  pick?: readonly number[];
  timeoutMs?: number;
}

/**
 * A video with no more frames than requested: one sequential decode of the whole stream, every
 * frame once, with its real timestamp (no seeks, so a variable frame rate cannot make two samples
 * land on one frame or skip one). `-vsync 0` passes frames through: the rawvideo muxer would
 * otherwise duplicate or drop frames to fake a constant rate.
 */
export async function decodeAllFrames(opts: DecodeAllOptions): Promise<ExtractResult> {
  const frameBytes = opts.size * opts.size * 3;
  const args = ffmpegArgs(opts, [], ['-vsync', '0']);
  const encoded: Promise<Buffer>[] = [];
  const kept: number[] = [];
  const wanted = opts.pick ? new Set(opts.pick) : undefined;
  let seen = 0;
  let pending: Buffer = Buffer.alloc(0);
  // Bound memory if the container's frame count was an underestimate: past 4x the request, stop.
  const cap = Math.max(opts.maxFrames * 4, 16);
  const r = await runProcess(opts.ffmpeg, args, {
    timeoutMs: opts.timeoutMs ?? 600_000,
    maxStderrChars: 4 * 1024 * 1024,
    onStdout: (chunk) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      while (pending.length >= frameBytes) {
        const n = seen++;
        if ((wanted ? wanted.has(n) : true) && encoded.length < cap) {
          encoded.push(encodeFrame(Buffer.from(pending.subarray(0, frameBytes)), opts.size, opts.format, opts.jpegQuality));
          kept.push(n);
        }
        pending = pending.subarray(frameBytes);
      }
    },
  });
  if (r.timedOut) throw new TransientMediaError(`ffmpeg timed out decoding the video`);
  if (r.code !== 0 && isTransientFfmpegError(r.stderr)) throw new TransientMediaError(`ffmpeg could not read the video: ${lastLines(r.stderr)}`);
  const times = [...r.stderr.matchAll(new RegExp(PTS_TIME, 'g'))].map((m) => Math.max(0, Number(m[1])));
  const data = await Promise.all(encoded);
  const usable = kept.filter((n) => n < times.length).length;
  const noFrame = { sample: 0, seek: 0, why: lastLines(r.stderr) || `ffmpeg exited with code ${r.code}` };
  if (wanted) {
    // Planned frames the stream did not have (it ended early) are reported as missing.
    const frames = kept.slice(0, usable).map((n, sample) => ({ sample, timestamp: times[n], data: data[sample] }));
    const missing = opts.pick!.filter((n) => n >= seen || n >= times.length).map((n, i) => ({ sample: frames.length + i, seek: 0, why: `frame ${n} not in the stream (${seen} decoded)` }));
    return { frames, missing: frames.length ? missing : [noFrame] };
  }
  if (seen > cap) return { frames: [], missing: [], overflowFrames: seen };
  if (usable === 0) return { frames: [], missing: [noFrame] };
  const chosen = usable > opts.maxFrames ? opts.choose(usable, opts.maxFrames) : [...Array(usable).keys()];
  return { frames: chosen.map((i, sample) => ({ sample, timestamp: times[kept[i]], data: data[i] })), missing: [] };
}
