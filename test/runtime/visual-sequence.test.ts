/** Streaming per-frame pooling gives exactly the method's progressivePool sequence. */
import { PAPER_POOLING, STOCK_POOLING } from '../../lib/contracts';
import { progressivePool } from '../../container/model/progressive-pool';
import { VisualSequenceBuilder } from '../../container/runtime/visual-sequence';

describe('VisualSequenceBuilder', () => {
  it.each([
    ['stock', STOCK_POOLING, 3],
    ['paper default', PAPER_POOLING, 6],
    ['stride 1', { groupSize: 2, strideHigh: 1, strideLow: 3 }, 3],
  ])('matches progressivePool for the %s schedule', (_name, schedule, frames) => {
    const grid = 27;
    const dim = 5;
    const feats = Array.from({ length: frames }, (_, f) => Float32Array.from({ length: grid * grid * dim }, (_, i) => Math.sin(i * 0.37 + f)));
    const newline = Float32Array.from({ length: dim }, (_, i) => 10 + i);
    const b = new VisualSequenceBuilder(frames, grid, dim, schedule);
    feats.forEach((f) => b.addFrame(f));
    const got = b.finish(newline);
    const expected = progressivePool({ frames: feats, dim, imageNewline: newline, schedule, gridSide: grid });
    expect(b.tokenCount).toBe(expected.tokenCount);
    expect(got).toEqual(expected.tokens);
  });

  it('refuses missing or extra frames', () => {
    const b = new VisualSequenceBuilder(1, 3, 2, STOCK_POOLING);
    expect(() => b.finish(new Float32Array(2))).toThrow(/only 0 of 1/);
    b.addFrame(new Float32Array(18));
    expect(() => b.addFrame(new Float32Array(18))).toThrow(/more than/);
  });
});
