/**
 * Which frames to take: N uniformly spaced frame indices over the whole video, the rule of
 * LLaVA-OneVision's own video loader (LLaVA-NeXT `load_video`, used by lmms-eval for the paper's
 * benchmarks): `np.linspace(0, total_frames - 1, N, dtype=int)`. It includes the first and last
 * frame. A video with fewer frames than N gives each of its frames once (no duplicates).
 *
 * Pure functions; the extractor turns indices into seek times and reports the times it decoded
 * (extraction-strategy.ts decides whether it seeks to each or decodes through them).
 */

/** numpy.linspace(0, frameCount - 1, n, dtype=int), with repeated indices dropped. */
export function linspaceIndices(frameCount: number, n: number): number[] {
  if (!Number.isInteger(frameCount) || frameCount < 1) throw new Error(`frame count must be a positive integer, got ${frameCount}`);
  if (!Number.isInteger(n) || n < 1) throw new Error(`number of frames to sample must be a positive integer, got ${n}`);
  if (frameCount <= n) return Array.from({ length: frameCount }, (_, i) => i);
  if (n === 1) return [0];
  const stop = frameCount - 1;
  const step = stop / (n - 1);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    // numpy computes start + i*step and sets the last element to `stop` exactly; dtype=int truncates.
    const value = i === n - 1 ? stop : Math.trunc(i * step);
    if (out.length === 0 || out[out.length - 1] !== value) out.push(value);
  }
  return out;
}

export interface SamplePoint {
  /** Frame index in the video (exact for constant frame rate, approximate for variable). */
  frameIndex: number;
  /** Nominal presentation time of that frame, seconds from the start of the video. */
  time: number;
  /** Where to seek: half a frame before, so rounding never skips to the next frame. */
  seek: number;
}

export interface SamplerInput {
  durationSeconds: number;
  /** Frames in the video (exact or estimated); when unknown, the duration at `fallbackFps` stands in. */
  frameCount?: number;
  frameRate?: number;
}

/**
 * Seek points for N frames. Frame i of F in a video of duration D starts at i*D/F (= i/fps for a
 * constant frame rate; for a variable frame rate the average spacing is used, and the extractor
 * reports the time of the frame it actually decoded).
 */
export function planSamples(input: SamplerInput, n: number, fallbackFps = 25): SamplePoint[] {
  const D = input.durationSeconds;
  if (!(D > 0)) throw new Error(`duration must be positive, got ${D}`);
  const F = input.frameCount && input.frameCount > 0 ? Math.round(input.frameCount) : Math.max(1, Math.round(D * (input.frameRate ?? fallbackFps)));
  const spacing = D / F;
  return linspaceIndices(F, n).map((frameIndex) => {
    const time = frameIndex * spacing;
    return { frameIndex, time, seek: Math.max(0, time - spacing / 2) };
  });
}

/**
 * Drops samples that decoded to the same frame (same presentation time), keeping the first: when
 * the frame count was an estimate (WebM, variable frame rate), two seeks can land on one frame.
 */
export function dropDuplicateFrames<T extends { timestamp: number }>(frames: readonly T[], toleranceSeconds = 1e-4): T[] {
  const out: T[] = [];
  for (const f of [...frames].sort((a, b) => a.timestamp - b.timestamp)) {
    if (out.length && Math.abs(out[out.length - 1].timestamp - f.timestamp) <= toleranceSeconds) continue;
    out.push(f);
  }
  return out;
}
