/**
 * Streams frame features into the decoder's visual token sequence, one vision batch at a time,
 * so the full-resolution features of every frame (729 × hidden each) never sit in memory at
 * once. Each frame is pooled with the method's per-frame rule (progressive pooling: stride s_h for
 * the first frame of each group of K, s_l for the rest; the stock model is K = 1, s_h = 2) through
 * the same per-frame step (`poolFrameInto`) as `progressivePool`; one image_newline closes the sequence.
 */
import type { PoolingSchedule } from '../../lib/contracts';
import { poolFrameInto, visualTokenCount } from '../model/progressive-pool';

export class VisualSequenceBuilder {
  readonly tokens: Float32Array;
  readonly tokenCount: number;
  private offset = 0;
  private framesAdded = 0;

  constructor(
    readonly frames: number,
    readonly gridSide: number,
    readonly dim: number,
    readonly schedule: PoolingSchedule,
  ) {
    this.tokenCount = visualTokenCount(frames, gridSide, schedule);
    this.tokens = new Float32Array(this.tokenCount * dim);
  }

  /** Appends the next frame's projected features [grid·grid, dim]. */
  addFrame(features: Float32Array): void {
    const perFrame = this.gridSide * this.gridSide * this.dim;
    if (features.length !== perFrame) throw new Error(`frame features hold ${features.length} values, expected ${perFrame}`);
    if (this.framesAdded >= this.frames) throw new Error(`more than the ${this.frames} announced frames`);
    this.offset += poolFrameInto(features, 0, this.framesAdded, this.gridSide, this.dim, this.schedule, this.tokens, this.offset);
    this.framesAdded++;
  }

  /** Appends the image_newline after the last frame and returns [tokenCount, dim]. */
  finish(imageNewline: Float32Array): Float32Array {
    if (this.framesAdded !== this.frames) throw new Error(`only ${this.framesAdded} of ${this.frames} frames were added`);
    if (imageNewline.length !== this.dim) throw new Error(`image_newline has ${imageNewline.length} values, expected ${this.dim}`);
    this.tokens.set(imageNewline, this.offset);
    this.offset += this.dim;
    if (this.offset !== this.tokens.length) throw new Error('visual sequence length does not match the pooling formula');
    return this.tokens;
  }
}
