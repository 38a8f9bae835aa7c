/**
 * Seek or pass, by cost. Both ways end with the same frames (the first frame at or after each
 * sample time); they differ in what ffmpeg decodes:
 * - seek: per sample, one ffmpeg that seeks to the keyframe before it and decodes forward to it:
 *   a fixed cost (process start, container index, seek, first frame) plus on average half a
 *   keyframe interval of frames;
 * - pass: the samples cut into one contiguous run per core, each run one ffmpeg that seeks to its
 *   first sample and decodes every frame through its last: the fixed cost once per run plus every
 *   frame between the samples.
 * Both run one process per core, so wall time is CPU time / cores for either, and comparing the
 * CPU estimates picks the faster one too. Output work (rgb24, resize, encode) is the same N frames
 * either way and drops out.
 *
 * The two constants are measured (`npm run bench:extract`, BENCHMARKS.md "Seek or pass"): the
 * decode cost per frame scales with the frame's pixels; the fixed cost of a seek is small beside
 * half a keyframe interval. So the rule is, in frames: pass when the spacing between samples is
 * below keyframeInterval/2 + 1 + seekFixed/decodePerFrame.
 */
import { linspaceIndices } from './frame-sampler';

/**
 * Measured by `npm run bench:extract` (calibration) on H.264 720p and 1080p with one core per
 * process, on the development machine: see BENCHMARKS.md "Seek or pass".
 */
export const MEASURED_COSTS = {
  /** CPU ms to decode one frame: a fixed part (parsing, bookkeeping) … */
  decodeMsPerFrame: 0.03,
  /** … plus a part per megapixel of frame (1.0 at 720p, 1.3 at 1080p measured). */
  decodeMsPerMegapixel: 1.1,
  /** CPU ms of one seek beyond decoding up to its frame: process start, container index, seek … */
  seekFixedMs: 10,
  /** … and the part that grows with the frame: the keyframe it starts from, the rgb24 frame out (53 ms at 720p, 106 at 1080p measured). */
  seekFixedMsPerMegapixel: 46,
};

export interface StrategyInput {
  /** Frames to sample. */
  n: number;
  frameCount?: number;
  frameCountExact: boolean;
  durationSeconds: number;
  frameRate?: number;
  width: number;
  height: number;
  /** Mean keyframe interval, seconds (from the first packets); undefined: unknown. */
  keyframeSeconds?: number;
  /** Processes at once (the vCPUs). */
  cores: number;
  /**
   * Seconds decoded ahead of every seek where the container's seeks are not exact (MPEG-TS/PS,
   * seek-accuracy.ts); Infinity: only decoding from the start is safe.
   */
  seekLeadSeconds?: number;
}

export type Strategy =
  /** No more frames than requested: decode every frame once. */
  | { mode: 'all' }
  | { mode: 'seek'; estimate: CostEstimate }
  | { mode: 'pass'; segments: number; estimate: CostEstimate };

export interface CostEstimate {
  /** Estimated CPU ms of each way. */
  seekMs: number;
  passMs: number;
  /** The inputs in frames: spacing between samples and keyframe interval. */
  sampleSpacingFrames: number;
  keyframeIntervalFrames: number;
}

export function estimateCosts(input: StrategyInput, costs = MEASURED_COSTS): CostEstimate {
  const fps = input.frameRate ?? (input.frameCount ? input.frameCount / input.durationSeconds : 25);
  const frames = input.frameCount ?? Math.max(1, Math.round(input.durationSeconds * fps));
  const megapixels = (input.width * input.height) / 1e6;
  const decodeMs = costs.decodeMsPerFrame + costs.decodeMsPerMegapixel * megapixels;
  const seekFixedMs = costs.seekFixedMs + costs.seekFixedMsPerMegapixel * megapixels;
  // Unknown keyframe interval: assume none to decode before a sample, which favours seeking (the
  // old default); a real interval only makes seeks dearer.
  const gop = input.keyframeSeconds !== undefined ? input.keyframeSeconds * fps : 0;
  const picked = linspaceIndices(frames, Math.min(input.n, frames));
  const span = picked[picked.length - 1] - picked[0] + 1;
  const runs = Math.max(1, Math.min(input.cores, picked.length));
  // A lead (inexact seeks) is decoded by every seek and every run, up to the frames before it.
  const lead = Math.min(frames, (input.seekLeadSeconds ?? 0) * fps);
  const seekMs = picked.length * (seekFixedMs + decodeMs * (gop / 2 + 1 + lead));
  const passMs = runs * (seekFixedMs + decodeMs * (gop / 2 + lead)) + decodeMs * span;
  return { seekMs, passMs, sampleSpacingFrames: frames / picked.length, keyframeIntervalFrames: gop };
}

export function chooseStrategy(input: StrategyInput, costs = MEASURED_COSTS): Strategy {
  if (input.frameCount !== undefined && input.frameCount <= input.n) return { mode: 'all' };
  const estimate = estimateCosts(input, costs);
  // Inexact seeks and no known keyframe interval: one pass from the start is the only exact way.
  if (input.seekLeadSeconds === Infinity) return { mode: 'pass', segments: 1, estimate };
  if (estimate.passMs < estimate.seekMs) return { mode: 'pass', segments: Math.max(1, Math.min(input.cores, input.n)), estimate };
  return { mode: 'seek', estimate };
}
