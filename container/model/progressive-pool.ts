/**
 * Progressive pooling (Wei & Chen, arXiv 2409.20018): the N frame grids are split into consecutive
 * groups of K frames; the first frame of each group keeps more detail (stride s_h), the other K−1
 * are pooled harder (stride s_l). "Stride" is the stock model's bilinear resize of the 27×27 grid
 * to ceil(27/stride) per side (2 → 14×14, 4 → 7×7, 8 → 4×4, 1 → 27×27 unchanged). A last group
 * shorter than K follows the same rule (its first frame detailed). The groups are concatenated in
 * order and ONE image_newline vector follows all frames (LLaVA-OneVision's video layout).
 *
 * The stock model is K = 1, s_h = 2 (every frame 14×14 = 196 tokens); the paper's default is
 * K = 4, s_h = 2, s_l = 8 (196 + 3·16 = 244 tokens per 4 frames instead of 784).
 */
import type { PoolingSchedule } from '../../lib/contracts';
import { bilinearResize } from './bilinear-resize';

/** The SigLIP-so400m/14 grid at 384 px: 27×27 patches. */
export const DEFAULT_GRID_SIDE = 27;

function checkSchedule(schedule: PoolingSchedule): void {
  for (const [k, v] of Object.entries(schedule) as [keyof PoolingSchedule, number][]) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`pooling.${k} must be a positive integer, got ${v}`);
  }
}

/** Side of a pooled frame: ceil(grid/stride). */
export function pooledSide(gridSide: number, stride: number): number {
  if (!Number.isInteger(gridSide) || gridSide < 1) throw new RangeError(`grid side must be a positive integer, got ${gridSide}`);
  if (!Number.isInteger(stride) || stride < 1) throw new RangeError(`stride must be a positive integer, got ${stride}`);
  return Math.ceil(gridSide / stride);
}

/** Stride of frame `index` (0-based): s_h for the first frame of its group, s_l for the rest. */
export function frameStride(index: number, schedule: PoolingSchedule): number {
  return index % schedule.groupSize === 0 ? schedule.strideHigh : schedule.strideLow;
}

/** Per-frame pooled token counts, in order (the image_newline is not counted here). */
export function frameTokenCounts(frames: number, gridSide: number, schedule: PoolingSchedule): number[] {
  if (!Number.isInteger(frames) || frames < 0) throw new RangeError(`frame count must be a non-negative integer, got ${frames}`);
  checkSchedule(schedule);
  const counts: number[] = new Array(frames);
  for (let f = 0; f < frames; f++) counts[f] = pooledSide(gridSide, frameStride(f, schedule)) ** 2;
  return counts;
}

/** Frames that share a pooled side (the detailed frames, the coarse ones), in order of first appearance. */
export interface SideGroup {
  side: number;
  /** Frame indices, ascending. */
  frames: number[];
}

/**
 * Frames grouped by pooled side: the vision graph pools one side per run, so the runtime encodes
 * each group in batches (progressive pooling: every K-th frame at s_h, the others at s_l; one
 * group when s_h = s_l or K = 1).
 */
export function framesBySide(frames: number, gridSide: number, schedule: PoolingSchedule): SideGroup[] {
  if (!Number.isInteger(frames) || frames < 0) throw new RangeError(`frame count must be a non-negative integer, got ${frames}`);
  checkSchedule(schedule);
  const groups = new Map<number, number[]>();
  for (let f = 0; f < frames; f++) {
    const side = pooledSide(gridSide, frameStride(f, schedule));
    let list = groups.get(side);
    if (!list) groups.set(side, (list = []));
    list.push(f);
  }
  return [...groups].map(([side, list]) => ({ side, frames: list }));
}

/**
 * L_test: visual tokens as they enter the decoder (pooled frames + the one image_newline). The
 * planner and the engine use it to know the RoPE scale s before anything is encoded. Closed form:
 * ceil(N/K) detailed frames and the rest coarse. 0 frames → 0 (no newline without frames).
 */
export function visualTokenCount(frames: number, gridSide: number, schedule: PoolingSchedule): number {
  if (!Number.isInteger(frames) || frames < 0) throw new RangeError(`frame count must be a non-negative integer, got ${frames}`);
  checkSchedule(schedule);
  if (frames === 0) return 0;
  const detailed = Math.ceil(frames / schedule.groupSize);
  const coarse = frames - detailed;
  return detailed * pooledSide(gridSide, schedule.strideHigh) ** 2 + coarse * pooledSide(gridSide, schedule.strideLow) ** 2 + 1;
}

/**
 * Pools frame `index` (its [grid·grid, dim] features at `srcOffset` of `src`) at its stride into
 * `out` at `outOffset`; returns the number of values written. Stride 1 copies (bilinear to the same
 * size is the identity).
 */
export function poolFrameInto(
  src: Float32Array,
  srcOffset: number,
  index: number,
  grid: number,
  dim: number,
  schedule: PoolingSchedule,
  out: Float32Array,
  outOffset: number,
): number {
  const side = pooledSide(grid, frameStride(index, schedule));
  if (side === grid) out.set(src.subarray(srcOffset, srcOffset + grid * grid * dim), outOffset);
  else bilinearResize(src, { height: grid, width: grid, channels: dim }, side, side, out, outOffset, srcOffset);
  return side * side * dim;
}

export interface ProgressivePoolInput {
  /**
   * The projected frame features: either one buffer [N, grid·grid, D] (frame-major, token-major
   * within a frame, channels last) or one [grid·grid, D] buffer per frame.
   */
  frames: Float32Array | readonly Float32Array[];
  /** N; required with a single buffer, implied by an array. */
  frameCount?: number;
  /** D: feature width (the decoder hidden size). */
  dim: number;
  /** The learned image_newline vector [D]. */
  imageNewline: Float32Array;
  schedule: PoolingSchedule;
  /** Grid side (27 for SigLIP-so400m/14 at 384 px). */
  gridSide?: number;
}

export interface ProgressivePoolResult {
  /** [T, D]: pooled frames in order, then the image_newline. */
  tokens: Float32Array;
  /** T (== visualTokenCount). */
  tokenCount: number;
  /** Tokens contributed by each frame, in order. */
  frameTokens: number[];
}

/** Maps N frame grids to the decoder's visual token sequence. Pure. */
export function progressivePool(input: ProgressivePoolInput): ProgressivePoolResult {
  const grid = input.gridSide ?? DEFAULT_GRID_SIDE;
  const { dim, imageNewline, schedule } = input;
  if (!Number.isInteger(dim) || dim < 1) throw new RangeError(`dim must be a positive integer, got ${dim}`);
  if (imageNewline.length !== dim) throw new RangeError(`image_newline has ${imageNewline.length} values, expected dim = ${dim}`);
  const perFrame = grid * grid * dim;
  const isArray = Array.isArray(input.frames);
  const n = isArray ? (input.frames as readonly Float32Array[]).length : input.frameCount;
  if (n === undefined) throw new RangeError('frameCount is required when frames is a single buffer');
  if (!isArray && (input.frames as Float32Array).length !== n * perFrame) {
    throw new RangeError(`frames holds ${(input.frames as Float32Array).length} values, expected ${n} frames x ${grid}x${grid} x ${dim} = ${n * perFrame}`);
  }
  if (n < 1) throw new RangeError('progressive pooling needs at least one frame');
  const frameTokens = frameTokenCounts(n, grid, schedule);
  const tokenCount = visualTokenCount(n, grid, schedule);
  const tokens = new Float32Array(tokenCount * dim);
  let offset = 0;
  for (let f = 0; f < n; f++) {
    let src: Float32Array;
    let srcOffset: number;
    if (isArray) {
      src = (input.frames as readonly Float32Array[])[f];
      srcOffset = 0;
      if (src.length !== perFrame) throw new RangeError(`frame ${f} holds ${src.length} values, expected ${grid}x${grid} x ${dim} = ${perFrame}`);
    } else {
      src = input.frames as Float32Array;
      srcOffset = f * perFrame;
    }
    offset += poolFrameInto(src, srcOffset, f, grid, dim, schedule, tokens, offset);
  }
  tokens.set(imageNewline, offset);
  return { tokens, tokenCount, frameTokens };
}
