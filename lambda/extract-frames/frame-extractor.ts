/**
 * Decodes sampled frames with ffmpeg and turns them into what the model sees, the way the
 * reference pipeline does: ffmpeg's own rgb24 conversion at the stream's size (what decord and
 * PyAV hand to the processor: no resize in YUV), then Pillow's BICUBIC to size × size with our
 * exact port (lib/preprocess), then a lossless PNG (or, when configured, a JPEG).
 *
 * ffmpeg reads the video through its (presigned) URL, so only the bytes it needs cross the
 * network and nothing of the video touches disk. One ffmpeg process decodes one "window":
 * - a seek: `-ss` before `-i` (ffmpeg seeks to the keyframe before, decodes forward and keeps the
 *   first frame at or after the time), one frame out;
 * - a pass: one seek to the first of several sample times, then every frame decoded in order and
 *   the first frame at or after each later sample time kept (`select`), stopping after the last;
 * - every frame of the stream (short videos with no more frames than requested).
 * The command line for all three is built in one place, `ffmpegCommand`.
 *
 * Rotation comes from the probe (display matrix) and is applied explicitly (-noautorotate) on the
 * rgb24 frame, before the resize (a transpose of packed RGB is lossless; resizing first would
 * round in the other axis order).
 */
import os from 'node:os';
import { mapLimit } from '../../lib/map-limit';
import { encodeFrame, pilResize, PIL_FILTERS, type FrameFormat } from '../../lib/preprocess';
import { inputArgs } from './input-restrictions';
import { runProcess } from './process';
import type { SamplePoint } from './frame-sampler';

export type { FrameFormat } from '../../lib/preprocess';

export interface FrameRequest {
  ffmpeg: string;
  /** URL (presigned GET) or local path. */
  input: string;
  /** ffprobe's index of the video stream to decode. */
  streamIndex: number;
  rotation: 0 | 90 | 180 | 270;
  /** The decoded frame as displayed (after rotation): ffmpeg writes frames of this size. */
  width: number;
  height: number;
  /** Side of the square frames the model takes. */
  size: number;
  format: FrameFormat;
  jpegQuality: number;
  /** Decoder threads per ffmpeg process (default 1: the extractor runs one process per core). */
  threads?: number;
  /** The demuxer the container was sniffed as (input-restrictions.ts); absent: ffmpeg probes. */
  demuxer?: string;
  /**
   * Seconds to start decoding ahead of each seek (seek-accuracy.ts): 0 (default) where the
   * container's seeks land on the keyframe before the time; Infinity decodes from the start.
   */
  seekLeadSeconds?: number;
}

/** What one ffmpeg process decodes. */
export interface DecodeWindow {
  /** Input seek, seconds from the start of the video; none = from the start. */
  seek?: number;
  /**
   * Keep only the first frame at or after each of these times (seconds from the start, ascending,
   * the first equal to `seek`); none = every frame.
   */
  pick?: readonly number[];
  /** Stop after this many frames out. */
  maxFrames?: number;
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
 * `select` keeping the first frame at or after each time. Times are relative to the seek (ffmpeg
 * starts the timestamps at 0 there). When the first pick is the seek itself, the first frame out
 * of the seek is kept (prev_t is NaN for it); a later first pick (a seek with a lead) keeps the
 * first frame at or after it. Then a frame is kept when a pick time lies in (previous frame's
 * time, its time].
 */
export function pickExpression(pick: readonly number[], seek: number): string {
  const rel = pick.map((t) => t - seek);
  const first = rel[0] <= 0 ? 'isnan(prev_t)' : `gte(t,${rel[0].toFixed(6)})*(isnan(prev_t)+lt(prev_t,${rel[0].toFixed(6)}))`;
  const terms = [first, ...rel.slice(1).map((r) => r.toFixed(6)).map((r) => `gte(t,${r})*lt(prev_t,${r})`)];
  return `select='${balancedSum(terms)}'`;
}

/**
 * Where the demuxer seeks for `window` and which frames are kept: with a lead (a container whose
 * seeks are not exact, seek-accuracy.ts) the seek moves back by the lead (to the start for
 * Infinity) and the window's own seek time becomes its first pick.
 */
export function seekWindow(window: DecodeWindow, leadSeconds = 0): DecodeWindow {
  if (window.seek === undefined || !(leadSeconds > 0)) return window;
  const seek = Number.isFinite(leadSeconds) ? Math.max(0, window.seek - leadSeconds) : 0;
  return { ...window, seek, pick: window.pick ?? [window.seek] };
}

/**
 * `a+b+c+…` as a balanced tree of parenthesised sums. ffmpeg's expression parser (libavutil/eval.c)
 * nests at most 100 levels, and ffmpeg 5.1 refuses a flat chain of ~100 terms ("Error
 * reinitializing filters! … Cannot allocate memory"); balanced, the nesting is log2(terms).
 */
export function balancedSum(terms: readonly string[]): string {
  if (terms.length <= 2) return terms.join('+');
  const half = terms.length >> 1;
  const part = (xs: readonly string[]) => (xs.length === 1 ? xs[0] : `(${balancedSum(xs)})`);
  return `${part(terms.slice(0, half))}+${part(terms.slice(half))}`;
}

/**
 * The filter chain: the pick (if any), showinfo (reports each kept frame's timestamp), ffmpeg's
 * rgb24 conversion at the stream's size, then the rotation on the RGB frame. The conversion is an
 * explicit `scale` (same size) before `format=rgb24`: with `format` alone, libavfilter's format
 * negotiation moves the conversion up to the decoder, ahead of select and of the seek's trim, and
 * every decoded frame is converted (twice the CPU of a seek; the same bytes).
 */
export function frameFilter(rotation: 0 | 90 | 180 | 270, window: DecodeWindow = {}): string {
  const p = window.pick;
  const pick = p && (p.length > 1 || p[0] > (window.seek ?? 0)) ? [pickExpression(p, window.seek ?? 0)] : [];
  // checksum=0: showinfo would otherwise checksum every plane of every frame it reports.
  return [...pick, 'showinfo=checksum=0', 'scale', 'format=rgb24', ...rotationFilters(rotation)].join(',');
}

/** ffmpeg's command line for one window of `req`: raw rgb24 frames on stdout, showinfo on stderr. */
export function ffmpegCommand(req: FrameRequest, asked: DecodeWindow): string[] {
  return commandFor(req, seekWindow(asked, req.seekLeadSeconds));
}

/** The command line for a window whose seek is where the demuxer goes (the lead already applied). */
function commandFor(req: FrameRequest, window: DecodeWindow): string[] {
  const args = ['-hide_banner', '-nostdin', '-nostats', '-v', 'info', '-noautorotate', '-threads', String(req.threads ?? 1)];
  // Only the job's own input's protocols, and the demuxer the upload was sniffed as (untrusted input).
  args.push(...inputArgs(req.input, req.demuxer));
  if (window.seek !== undefined && window.seek > 0) args.push('-ss', window.seek.toFixed(6));
  args.push('-i', req.input, '-map', `0:${req.streamIndex}`, '-an', '-sn', '-dn');
  if (window.maxFrames !== undefined) args.push('-frames:v', String(window.maxFrames));
  // Passthrough: the rawvideo muxer would otherwise duplicate or drop frames to fake a constant rate.
  args.push('-vf', frameFilter(req.rotation, window), '-vsync', '0', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1');
  return args;
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

function lastLines(stderr: string, n = 2): string {
  return stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/^(Input|Output|Stream|Metadata|Duration|\w+\s*:|Press|\[Parsed_showinfo)/.test(l))
    .slice(-n)
    .join(' | ');
}

/**
 * Full-size frame buffers, reused: a 1080p rgb24 frame is 6 MB, and allocating one per frame makes
 * the garbage collector run far more than the frames need.
 */
const spareFrames = new Map<number, Buffer[]>();
function takeFrameBuffer(bytes: number): Buffer {
  return spareFrames.get(bytes)?.pop() ?? Buffer.allocUnsafe(bytes);
}
function giveFrameBuffer(buf: Buffer): void {
  const list = spareFrames.get(buf.length) ?? [];
  // A few per size: one per concurrent ffmpeg is all that is ever in use.
  if (list.length < 16) list.push(buf);
  spareFrames.set(buf.length, list);
}

/** Cuts ffmpeg's stdout into whole frames in one reused buffer (onFrame must copy what it keeps). */
class FrameAssembler {
  private readonly frame: Buffer;
  private filled = 0;
  count = 0;

  constructor(
    private readonly frameBytes: number,
    private readonly onFrame: (rgb: Buffer, n: number) => void,
  ) {
    this.frame = takeFrameBuffer(frameBytes);
  }

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      const n = Math.min(this.frameBytes - this.filled, chunk.length - at);
      chunk.copy(this.frame, this.filled, at, at + n);
      this.filled += n;
      at += n;
      if (this.filled === this.frameBytes) {
        this.onFrame(this.frame, this.count++);
        this.filled = 0;
      }
    }
  }

  release(): void {
    giveFrameBuffer(this.frame);
  }
}

export interface WindowResult {
  /** Presentation times (seconds from the start of the video) of the frames out, in order. */
  times: number[];
  /** Frames written to stdout (whole ones). */
  frames: number;
  code: number | null;
  stderr: string;
}

/**
 * Runs one window; `onFrame` gets each frame's rgb24 bytes as it arrives, in a buffer reused for the
 * next frame (copy what you keep). A network failure or a timeout throws TransientMediaError;
 * anything else is in the result.
 */
export async function decodeWindow(req: FrameRequest, window: DecodeWindow, onFrame: (rgb: Buffer, n: number) => void, timeoutMs = 600_000): Promise<WindowResult> {
  const assembler = new FrameAssembler(req.width * req.height * 3, onFrame);
  // The demuxer's seek: the command seeks there and the timestamps count from there.
  const planned = seekWindow(window, req.seekLeadSeconds);
  const r = await runProcess(req.ffmpeg, commandFor(req, planned), {
    timeoutMs,
    // showinfo writes one line (~400 chars) per kept frame: keep them all.
    maxStderrChars: 1024 * 1024 + 600 * (window.maxFrames ?? window.pick?.length ?? 4096),
    onStdout: (chunk) => assembler.push(chunk),
  }).finally(() => assembler.release());
  const where = window.seek ? ` at ${window.seek.toFixed(3)} s` : '';
  if (r.timedOut) throw new TransientMediaError(`ffmpeg timed out after ${timeoutMs} ms decoding${where}`);
  if (r.code !== 0 && isTransientFfmpegError(r.stderr)) throw new TransientMediaError(`ffmpeg could not read the video: ${lastLines(r.stderr)}`);
  // Timestamps after an input seek start at 0 at the seek point (ffmpeg subtracts start time and -ss).
  const offset = planned.seek ?? 0;
  const times = [...r.stderr.matchAll(new RegExp(PTS_TIME, 'g'))].map((m) => Math.max(0, offset + Number(m[1])));
  return { times, frames: assembler.count, code: r.code, stderr: r.stderr };
}

/** A decoded frame as the model sees it: resized exactly as Pillow's BICUBIC (synchronously: `rgb` may be reused after), then encoded. */
export function storedFrame(rgb: Uint8Array, req: Pick<FrameRequest, 'width' | 'height' | 'size' | 'format' | 'jpegQuality'>): Promise<Buffer> {
  const resized = pilResize({ width: req.width, height: req.height, channels: 3, data: rgb }, req.size, req.size, PIL_FILTERS.bicubic);
  return encodeFrame(resized.data, req.size, req.size, req.format, req.jpegQuality);
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
  /** ffmpeg processes at once (default: the CPU count). */
  concurrency?: number;
  frameTimeoutMs?: number;
  onProgress?: (done: number, total: number) => void;
}

const defaultConcurrency = () => os.availableParallelism?.() ?? os.cpus().length;

/** Runs a window and encodes what it keeps; frames[i] pairs with times[i]. */
async function decodeAndStore(req: FrameRequest, window: DecodeWindow, timeoutMs?: number, keep: (n: number) => boolean = () => true, onStored?: () => void) {
  const encoded: Promise<Buffer>[] = [];
  const kept: number[] = [];
  const r = await decodeWindow(
    req,
    window,
    (rgb, n) => {
      if (!keep(n)) return;
      kept.push(n);
      encoded.push(storedFrame(rgb, req).then((b) => (onStored?.(), b)));
    },
    timeoutMs,
  );
  return { ...r, kept, data: await Promise.all(encoded) };
}

/**
 * One seek per sample, `concurrency` ffmpeg processes at a time: the cost per sample is a process
 * start plus the decode from the keyframe before it (what any seeking reader pays).
 */
export async function extractFrames(opts: ExtractOptions): Promise<ExtractResult> {
  let done = 0;
  const outcomes = await mapLimit(opts.samples, opts.concurrency ?? defaultConcurrency(), async (point, sample) => {
    const r = await decodeAndStore(opts, { seek: point.seek, maxFrames: 1 }, opts.frameTimeoutMs);
    opts.onProgress?.(++done, opts.samples.length);
    if (r.data.length) return { frame: { sample, timestamp: r.times[0] ?? point.seek, data: r.data[0] } };
    const why = r.code !== 0 ? lastLines(r.stderr) || `ffmpeg exited with code ${r.code}` : `no frame at ${point.seek.toFixed(3)} s (${lastLines(r.stderr) || 'end of stream'})`;
    return { missing: { sample, seek: point.seek, why } };
  });
  return {
    frames: outcomes.flatMap((o) => (o.frame ? [o.frame] : [])),
    missing: outcomes.flatMap((o) => (o.missing ? [o.missing] : [])),
  };
}

/** Splits `n` items into `parts` contiguous runs of near-equal length. */
export function contiguousRuns(n: number, parts: number): { start: number; end: number }[] {
  const k = Math.max(1, Math.min(parts, n));
  return Array.from({ length: k }, (_, i) => ({ start: Math.floor((i * n) / k), end: Math.floor(((i + 1) * n) / k) }));
}

/**
 * Sequential decoding, split over the cores: the samples are cut into `segments` contiguous runs;
 * each run is one ffmpeg process that seeks to its first sample and decodes forward through its
 * last, keeping the first frame at or after each sample time. Cheaper than seeking when samples
 * are closer together than the cost of a seek (see extraction-cost.ts).
 */
export async function extractByPasses(opts: ExtractOptions & { segments?: number }): Promise<ExtractResult> {
  const runs = contiguousRuns(opts.samples.length, opts.segments ?? opts.concurrency ?? defaultConcurrency());
  let done = 0;
  const results = await mapLimit(runs, opts.concurrency ?? defaultConcurrency(), async ({ start, end }) => {
    const points = opts.samples.slice(start, end);
    const pick = points.map((p) => p.seek);
    const r = await decodeAndStore(opts, { seek: pick[0], pick, maxFrames: pick.length }, opts.frameTimeoutMs, undefined, () => opts.onProgress?.(++done, opts.samples.length));
    const frames = r.data.map((data, i) => ({ sample: start + i, timestamp: r.times[i] ?? pick[i], data }));
    const why = r.code !== 0 ? lastLines(r.stderr) || `ffmpeg exited with code ${r.code}` : `the stream ended at ${(r.times[r.times.length - 1] ?? pick[0]).toFixed(3)} s`;
    const missing = points.slice(frames.length).map((p, i) => ({ sample: start + frames.length + i, seek: p.seek, why }));
    return { frames, missing };
  });
  return { frames: results.flatMap((r) => r.frames), missing: results.flatMap((r) => r.missing) };
}

export interface DecodeAllOptions extends FrameRequest {
  /** Keep at most this many frames, chosen with the sampler's rule over the frames decoded. */
  maxFrames: number;
  /** Chooses `n` of `count` frame indices (the sampler's linspace). */
  choose: (count: number, n: number) => number[];
  timeoutMs?: number;
}

/**
 * A video with no more frames than requested: one sequential decode of the whole stream, every
 * frame once, with its real timestamp (no seeks, so a variable frame rate cannot make two samples
 * land on one frame or skip one).
 */
export async function decodeAllFrames(opts: DecodeAllOptions): Promise<ExtractResult> {
  // Bound memory if the container's frame count was an underestimate: past 4x the request, stop keeping.
  const cap = Math.max(opts.maxFrames * 4, 16);
  const r = await decodeAndStore(opts, {}, opts.timeoutMs, (n) => n < cap);
  if (r.frames > cap) return { frames: [], missing: [], overflowFrames: r.frames };
  const usable = Math.min(r.data.length, r.times.length);
  if (usable === 0) return { frames: [], missing: [{ sample: 0, seek: 0, why: lastLines(r.stderr) || `ffmpeg exited with code ${r.code}` }] };
  const chosen = usable > opts.maxFrames ? opts.choose(usable, opts.maxFrames) : [...Array(usable).keys()];
  return { frames: chosen.map((i, sample) => ({ sample, timestamp: r.times[i], data: r.data[i] })), missing: [] };
}
