/**
 * The stock frame pooling: F.interpolate(mode="bilinear", align_corners=False) semantics, checked
 * against hand-derived source indices/weights and hand-computed grids.
 */
import { bilinearResize, bilinearTaps } from '../../container/model/bilinear-resize';

function taps(inSize: number, outSize: number) {
  const t = bilinearTaps(inSize, outSize);
  return Array.from(t.i0, (i0, o) => [i0, t.i1[o], +t.w1[o].toFixed(12)]);
}

describe('source indices and weights (half-pixel centres, clamp at 0, edge clamp)', () => {
  it('27 → 14 (the stock stride 2)', () => {
    // scale 27/14; src(o) = 27/14·(o + 0.5) − 0.5: o = 0 → 0.4642857…, o = 13 → 25.5357142…
    const t = taps(27, 14);
    expect(t[0]).toEqual([0, 1, +(13 / 28).toFixed(12)]);
    expect(t[1]).toEqual([2, 3, +(11 / 28).toFixed(12)]); // 27/14·1.5 − 0.5 = 2.392857
    expect(t[13]).toEqual([25, 26, +(15 / 28).toFixed(12)]);
  });

  it('27 → 7 and 27 → 4 (strides 4 and 8)', () => {
    expect(taps(27, 7)[0]).toEqual([1, 2, +(3 / 7).toFixed(12)]); // 27/14 − 0.5 = 1.428571
    expect(taps(27, 7)[6]).toEqual([24, 25, +(4 / 7).toFixed(12)]); // 27/7·6.5 − 0.5 = 24.571428
    expect(taps(27, 4)).toEqual([
      [2, 3, 0.875], // 6.75·0.5 − 0.5 = 2.875
      [9, 10, 0.625], // 6.75·1.5 − 0.5 = 9.625
      [16, 17, 0.375],
      [23, 24, 0.125],
    ]);
  });

  it('5 → 3 and 3 → 5 (non-integer factors, the 0 clamp and the last-index clamp)', () => {
    expect(taps(5, 3)).toEqual([
      [0, 1, +(1 / 3).toFixed(12)],
      [2, 3, 0],
      [3, 4, +(2 / 3).toFixed(12)],
    ]);
    expect(taps(3, 5)).toEqual([
      [0, 1, 0], // src = −0.2 → clamped to 0
      [0, 1, 0.4],
      [1, 2, 0],
      [1, 2, 0.6],
      [2, 2, 0.2], // src = 2.2: i0 is the last index, so i1 = i0
    ]);
  });

  it('27 → 1 takes the centre, 27 → 27 is the identity', () => {
    expect(taps(27, 1)).toEqual([[13, 14, 0]]);
    expect(taps(27, 27).every(([i0, , w1], o) => i0 === o && w1 === 0)).toBe(true);
  });
});

describe('bilinearResize on token-major grids [h·w, D]', () => {
  it('upsamples [[1,0],[0,0]] to 3×3 as derived by hand', () => {
    // 1D 2 → 3: src = −1/6 → 0, 0.5, 7/6 → last index: [x0, (x0+x1)/2, x1]
    const out = bilinearResize(new Float32Array([1, 0, 0, 0]), { height: 2, width: 2, channels: 1 }, 3, 3);
    expect(Array.from(out)).toEqual([1, 0.5, 0, 0.5, 0.25, 0, 0, 0, 0]);
  });

  it('5×5 → 3×3 with two channels, by hand', () => {
    // channel 0 = 10y + x (bilinear reproduces it at the clamped source point), channel 1 = x·y
    const h = 5, w = 5;
    const input = new Float32Array(h * w * 2);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) { input[(y * w + x) * 2] = 10 * y + x; input[(y * w + x) * 2 + 1] = x * y; }
    const out = bilinearResize(input, { height: h, width: w, channels: 2 }, 3, 3);
    const src = [1 / 3, 2, 11 / 3];
    for (let oy = 0; oy < 3; oy++) {
      for (let ox = 0; ox < 3; ox++) {
        expect(out[(oy * 3 + ox) * 2]).toBeCloseTo(10 * src[oy] + src[ox], 5);
        expect(out[(oy * 3 + ox) * 2 + 1]).toBeCloseTo(src[oy] * src[ox], 5);
      }
    }
    expect(out[0]).toBe(Math.fround(11 / 3)); // one rounding, from float64
  });

  it.each([
    [27, 27, 14, 14],
    [27, 27, 7, 7],
    [27, 27, 4, 4],
    [5, 7, 3, 4],
    [3, 5, 5, 9],
    [27, 27, 1, 1],
  ])('%i×%i → %i×%i equals R_h · X · R_wᵀ built from the hand rule', (h, w, oh, ow) => {
    const d = 3;
    const x = new Float32Array(h * w * d).map(() => Math.random() * 2 - 1);
    const out = bilinearResize(x, { height: h, width: w, channels: d }, oh, ow);
    // Independent reference: dense interpolation matrices, each row written from the formula.
    const matrix = (n: number, m: number) => {
      const R: number[][] = [];
      for (let o = 0; o < m; o++) {
        const row = new Array(n).fill(0);
        const src = Math.max((n / m) * (o + 0.5) - 0.5, 0);
        const lo = Math.floor(src);
        const hi = Math.min(lo + 1, n - 1);
        row[lo] += 1 - (src - lo);
        row[hi] += src - lo;
        R.push(row);
      }
      return R;
    };
    const Rh = matrix(h, oh);
    const Rw = matrix(w, ow);
    let maxErr = 0;
    for (let oy = 0; oy < oh; oy++) for (let ox = 0; ox < ow; ox++) for (let k = 0; k < d; k++) {
      let acc = 0;
      for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) acc += Rh[oy][y] * Rw[ox][xx] * x[(y * w + xx) * d + k];
      maxErr = Math.max(maxErr, Math.abs(acc - out[(oy * ow + ox) * d + k]));
    }
    expect(maxErr).toBeLessThan(1e-6);
  });

  it('a constant grid stays constant; writes at an offset into a larger buffer', () => {
    const x = new Float32Array(27 * 27 * 4).fill(0.75);
    const big = new Float32Array(10 + 14 * 14 * 4).fill(-1);
    bilinearResize(x, { height: 27, width: 27, channels: 4 }, 14, 14, big, 10);
    expect(Array.from(big.subarray(0, 10)).every((v) => v === -1)).toBe(true);
    expect(Array.from(big.subarray(10)).every((v) => Math.abs(v - 0.75) < 1e-7)).toBe(true);
  });

  it('rejects a buffer that does not hold the grid', () => {
    expect(() => bilinearResize(new Float32Array(10), { height: 3, width: 3, channels: 2 }, 2, 2)).toThrow(/3x3x2 grid needs 18/);
    expect(() => bilinearTaps(0, 3)).toThrow(/input size/);
    expect(() => bilinearResize(new Float32Array(18), { height: 3, width: 3, channels: 2 }, 2, 2, new Float32Array(4))).toThrow(/output holds 4/);
  });
});
