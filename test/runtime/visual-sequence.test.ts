/**
 * The visual sequence assembled from pooled frames that arrive grouped by pooled side (as the
 * engine batches them) equals the method's progressivePool sequence, frame for frame.
 */
import { PAPER_POOLING, STOCK_POOLING } from '../../lib/contracts';
import { framesBySide, frameTokenCounts, poolFrameInto, progressivePool } from '../../container/model/progressive-pool';
import { VisualSequenceBuilder } from '../../container/runtime/visual-sequence';

describe('VisualSequenceBuilder', () => {
  it.each([
    ['stock', STOCK_POOLING, 3],
    ['paper default', PAPER_POOLING, 6],
    ['stride 1', { groupSize: 2, strideHigh: 1, strideLow: 3 }, 3],
  ])('placing frames by pooled side (out of temporal order) matches progressivePool for the %s schedule', (_name, schedule, frames) => {
    const grid = 27;
    const dim = 5;
    const feats = Array.from({ length: frames }, (_, f) => Float32Array.from({ length: grid * grid * dim }, (_, i) => Math.sin(i * 0.37 + f)));
    const newline = Float32Array.from({ length: dim }, (_, i) => 10 + i);
    const b = new VisualSequenceBuilder(frames, grid, dim, schedule);
    const counts = frameTokenCounts(frames, grid, schedule);
    const order = framesBySide(frames, grid, schedule).flatMap((g) => g.frames);
    if (schedule.groupSize > 1 && frames > 1) expect(order).not.toEqual([...order].sort((x, y) => x - y)); // really out of order
    for (const f of order) {
      const pooled = new Float32Array(counts[f] * dim);
      poolFrameInto(feats[f], 0, f, grid, dim, schedule, pooled, 0);
      b.setFrame(f, pooled);
    }
    const got = b.finish(newline);
    const expected = progressivePool({ frames: feats, dim, imageNewline: newline, schedule, gridSide: grid });
    expect(b.tokenCount).toBe(expected.tokenCount);
    expect(got).toEqual(expected.tokens);
  });

  it('groups frames by pooled side: every K-th frame detailed, the rest coarse', () => {
    expect(framesBySide(6, 27, PAPER_POOLING)).toEqual([
      { side: 14, frames: [0, 4] },
      { side: 4, frames: [1, 2, 3, 5] },
    ]);
    expect(framesBySide(3, 27, STOCK_POOLING)).toEqual([{ side: 14, frames: [0, 1, 2] }]);
    expect(framesBySide(0, 27, STOCK_POOLING)).toEqual([]);
  });

  it('refuses missing, repeated, unknown and short frames', () => {
    const b = new VisualSequenceBuilder(2, 3, 2, STOCK_POOLING); // side ceil(3/2) = 2: 4 tokens of 2 values
    expect(() => b.finish(new Float32Array(2))).toThrow(/2 of 2 frames were not placed \(first: 0\)/);
    b.setFrame(1, new Float32Array(8));
    expect(() => b.setFrame(1, new Float32Array(8))).toThrow(/frame 1 was placed twice/);
    expect(() => b.setFrame(2, new Float32Array(8))).toThrow(/outside the 2 announced frames/);
    expect(() => b.setFrame(0, new Float32Array(7))).toThrow(/needs 8 values/);
    expect(() => b.finish(new Float32Array(2))).toThrow(/1 of 2 frames were not placed \(first: 0\)/);
  });
});
