/**
 * Progressive pooling (DESIGN.md, "The paper's two mechanisms" §2): token counts against the
 * formula and by hand, and the sequence layout (order, strides, one image_newline at the end).
 */
import { PAPER_POOLING, STOCK_POOLING, type PoolingSchedule } from '../../lib/contracts';
import { bilinearResize } from '../../container/model/bilinear-resize';
import { frameStride, frameTokenCounts, pooledSide, progressivePool, visualTokenCount } from '../../container/model/progressive-pool';

describe('token counts', () => {
  it('pooled side is ceil(27/stride)', () => {
    expect([1, 2, 3, 4, 5, 8, 13, 14, 27].map((s) => pooledSide(27, s))).toEqual([27, 14, 9, 7, 6, 4, 3, 2, 1]);
  });

  it("match the paper's figures at 256 frames", () => {
    // Stock: 256 × 196 = 50,176 frame tokens (DESIGN.md) + 1 image_newline.
    expect(visualTokenCount(256, 27, STOCK_POOLING)).toBe(50177);
    // Paper default K=4 (2,8): 64 frames at 14×14 + 192 at 4×4 + newline = 12544 + 3072 + 1.
    expect(visualTokenCount(256, 27, PAPER_POOLING)).toBe(15617);
  });

  it.each([
    // [N, schedule, hand count]
    [10, PAPER_POOLING, 3 * 196 + 7 * 16 + 1], // groups 4,4,2: the short last group keeps its detailed first frame
    [3, PAPER_POOLING, 196 + 2 * 16 + 1], // N < K
    [1, PAPER_POOLING, 197], // N = 1
    [4, PAPER_POOLING, 196 + 3 * 16 + 1],
    [5, PAPER_POOLING, 2 * 196 + 3 * 16 + 1],
    [2, { groupSize: 2, strideHigh: 1, strideLow: 2 }, 729 + 196 + 1], // stride 1: full 27×27
    [7, { groupSize: 16, strideHigh: 2, strideLow: 8 }, 196 + 6 * 16 + 1],
    [9, { groupSize: 3, strideHigh: 3, strideLow: 27 }, 3 * 81 + 6 * 1 + 1],
    [0, PAPER_POOLING, 0],
  ] as [number, PoolingSchedule, number][])('N = %i, %j → %i tokens', (n, schedule, expected) => {
    expect(visualTokenCount(n, 27, schedule)).toBe(expected);
    const perFrame = frameTokenCounts(n, 27, schedule);
    expect(perFrame.length).toBe(n);
    expect(perFrame.reduce((a, b) => a + b, 0) + (n > 0 ? 1 : 0)).toBe(expected);
  });

  it('the closed form equals the per-frame sum for many N and schedules', () => {
    for (const schedule of [PAPER_POOLING, STOCK_POOLING, { groupSize: 3, strideHigh: 1, strideLow: 5 }, { groupSize: 16, strideHigh: 2, strideLow: 8 }]) {
      for (let n = 1; n <= 70; n++) {
        const sum = frameTokenCounts(n, 27, schedule).reduce((a, b) => a + b, 0) + 1;
        expect(visualTokenCount(n, 27, schedule)).toBe(sum);
      }
    }
  });

  it('first frame of each group is detailed', () => {
    expect(Array.from({ length: 10 }, (_, f) => frameStride(f, PAPER_POOLING))).toEqual([2, 8, 8, 8, 2, 8, 8, 8, 2, 8]);
    expect(frameTokenCounts(6, 27, PAPER_POOLING)).toEqual([196, 16, 16, 16, 196, 16]);
  });

  it('rejects bad schedules and counts', () => {
    expect(() => visualTokenCount(-1, 27, PAPER_POOLING)).toThrow(/frame count/);
    expect(() => visualTokenCount(4, 27, { groupSize: 0, strideHigh: 2, strideLow: 8 })).toThrow(/pooling.groupSize/);
  });
});

describe('progressivePool', () => {
  const D = 3;
  const grid = 27;
  /** Frame f: channel 0 = f (constant), channel 1 = 10y + x, channel 2 = noise. */
  function frames(n: number): Float32Array[] {
    return Array.from({ length: n }, (_, f) => {
      const a = new Float32Array(grid * grid * D);
      for (let y = 0; y < grid; y++) for (let x = 0; x < grid; x++) {
        const o = (y * grid + x) * D;
        a[o] = f;
        a[o + 1] = 10 * y + x;
        a[o + 2] = Math.random();
      }
      return a;
    });
  }
  const newline = new Float32Array([-7, -8, -9]);

  it('lays out the groups in order, each frame at its stride, one image_newline at the end', () => {
    const fs = frames(6);
    const r = progressivePool({ frames: fs, dim: D, imageNewline: newline, schedule: PAPER_POOLING });
    expect(r.frameTokens).toEqual([196, 16, 16, 16, 196, 16]);
    expect(r.tokenCount).toBe(196 * 2 + 16 * 4 + 1);
    expect(r.tokens.length).toBe(r.tokenCount * D);
    let t = 0;
    for (let f = 0; f < 6; f++) {
      const side = Math.sqrt(r.frameTokens[f]);
      const expected = bilinearResize(fs[f], { height: grid, width: grid, channels: D }, side, side);
      const got = r.tokens.subarray(t * D, (t + r.frameTokens[f]) * D);
      expect(Buffer.from(got.slice().buffer).equals(Buffer.from(expected.buffer))).toBe(true);
      for (let k = 0; k < r.frameTokens[f]; k++) expect(got[k * D]).toBeCloseTo(f, 5); // frame identity survives pooling
      t += r.frameTokens[f];
    }
    expect(Array.from(r.tokens.subarray(t * D))).toEqual([-7, -8, -9]);
    // A 4×4 frame samples source points 2.875, 9.625, 16.375, 23.125 (see the resize tests).
    const coarse = r.tokens.subarray(196 * D, (196 + 16) * D);
    expect(coarse[1]).toBeCloseTo(10 * 2.875 + 2.875, 4);
    expect(coarse[15 * D + 1]).toBeCloseTo(10 * 23.125 + 23.125, 4);
  });

  it('one buffer [N, 729, D] gives the same sequence as per-frame buffers', () => {
    const fs = frames(5);
    const flat = new Float32Array(5 * grid * grid * D);
    fs.forEach((f, i) => flat.set(f, i * grid * grid * D));
    const a = progressivePool({ frames: fs, dim: D, imageNewline: newline, schedule: PAPER_POOLING });
    const b = progressivePool({ frames: flat, frameCount: 5, dim: D, imageNewline: newline, schedule: PAPER_POOLING });
    expect(Buffer.from(a.tokens.buffer).equals(Buffer.from(b.tokens.buffer))).toBe(true);
  });

  it('stride 1 keeps the 27×27 grid bit for bit; N = 1; stock schedule', () => {
    const fs = frames(2);
    const r = progressivePool({ frames: fs, dim: D, imageNewline: newline, schedule: { groupSize: 2, strideHigh: 1, strideLow: 2 } });
    expect(r.frameTokens).toEqual([729, 196]);
    expect(Buffer.from(r.tokens.slice(0, 729 * D).buffer).equals(Buffer.from(fs[0].buffer))).toBe(true);
    expect(progressivePool({ frames: fs.slice(0, 1), dim: D, imageNewline: newline, schedule: PAPER_POOLING }).tokenCount).toBe(197);
    const stock = progressivePool({ frames: fs, dim: D, imageNewline: newline, schedule: STOCK_POOLING });
    expect(stock.frameTokens).toEqual([196, 196]);
  });

  it('names the problem with inconsistent inputs', () => {
    expect(() => progressivePool({ frames: new Float32Array(100), frameCount: 1, dim: D, imageNewline: newline, schedule: PAPER_POOLING })).toThrow(/expected 1 frames x 27x27 x 3 = 2187/);
    expect(() => progressivePool({ frames: new Float32Array(2187), dim: D, imageNewline: newline, schedule: PAPER_POOLING })).toThrow(/frameCount is required/);
    expect(() => progressivePool({ frames: frames(1), dim: D, imageNewline: new Float32Array(2), schedule: PAPER_POOLING })).toThrow(/image_newline has 2 values/);
    expect(() => progressivePool({ frames: [], dim: D, imageNewline: newline, schedule: PAPER_POOLING })).toThrow(/at least one frame/);
    expect(() => progressivePool({ frames: [new Float32Array(5)], dim: D, imageNewline: newline, schedule: PAPER_POOLING })).toThrow(/frame 0 holds 5 values/);
  });
});
