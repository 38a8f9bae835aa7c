/**
 * Assembles the decoder's visual token sequence from pooled frames as they come back from the
 * vision graph — in any order, since the runtime batches frames by pooled side (progressive
 * pooling: the first frame of each group of K at stride s_h, the rest at s_l). Frame f's tokens go
 * at its place in temporal order; one image_newline closes the sequence (LLaVA-OneVision's video
 * layout). Only pooled tokens are held: 256 frames at the paper's schedule are 15.6K rows.
 */
import type { PoolingSchedule } from '../../lib/contracts';
import { frameTokenCounts, visualTokenCount } from '../model/progressive-pool';

export class VisualSequenceBuilder {
  readonly tokens: Float32Array;
  readonly tokenCount: number;
  /** Row where each frame's pooled tokens start, and how many there are. */
  private readonly starts: number[];
  private readonly counts: number[];
  private readonly placed: boolean[];

  constructor(
    readonly frames: number,
    readonly gridSide: number,
    readonly dim: number,
    readonly schedule: PoolingSchedule,
  ) {
    this.counts = frameTokenCounts(frames, gridSide, schedule);
    this.starts = [];
    let row = 0;
    for (const c of this.counts) {
      this.starts.push(row);
      row += c;
    }
    this.tokenCount = visualTokenCount(frames, gridSide, schedule);
    this.tokens = new Float32Array(this.tokenCount * dim);
    this.placed = new Array<boolean>(frames).fill(false);
  }

  /** Places frame `index`'s pooled tokens, read from `src` at `srcOffset` (values). */
  setFrame(index: number, src: Float32Array, srcOffset = 0): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.frames) throw new Error(`frame ${index} is outside the ${this.frames} announced frames`);
    if (this.placed[index]) throw new Error(`frame ${index} was placed twice`);
    const n = this.counts[index] * this.dim;
    if (src.length - srcOffset < n) throw new Error(`frame ${index} needs ${n} values from offset ${srcOffset}, the buffer holds ${src.length - srcOffset}`);
    this.tokens.set(src.subarray(srcOffset, srcOffset + n), this.starts[index] * this.dim);
    this.placed[index] = true;
  }

  /** Appends the image_newline after the last frame and returns [tokenCount, dim]. */
  finish(imageNewline: Float32Array): Float32Array {
    const missing = this.placed.flatMap((p, i) => (p ? [] : [i]));
    if (missing.length > 0) throw new Error(`${missing.length} of ${this.frames} frames were not placed (first: ${missing[0]})`);
    if (imageNewline.length !== this.dim) throw new Error(`image_newline has ${imageNewline.length} values, expected ${this.dim}`);
    this.tokens.set(imageNewline, (this.tokenCount - 1) * this.dim);
    return this.tokens;
  }
}
