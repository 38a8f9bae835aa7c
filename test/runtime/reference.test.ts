/** Hand-checked values for the float64 reference's building blocks. */
import { erf, geluErf, geluTanh, layerNorm, linear, mat, rmsNorm, ropeTablesFromInvFreq, softmaxInPlace, stockInvFreq } from '../../container/reference';

describe('reference building blocks', () => {
  it('erf matches tabulated values on both branches', () => {
    const table: [number, number][] = [[0.5, 0.5204998778130465], [1, 0.8427007929497149], [2, 0.9953222650189527], [3, 0.9999779095030014], [-1.5, -0.9661051464753108]];
    for (const [x, v] of table) expect(Math.abs(erf(x) - v)).toBeLessThan(1e-15);
    expect(geluErf(1)).toBeCloseTo(0.8413447460685429, 14);
    expect(geluTanh(1)).toBeCloseTo(0.8411919906082768, 14);
  });

  it('linear, layer norm and RMS norm follow the PyTorch definitions', () => {
    const x = mat(1, 2, Float64Array.of(1, 2));
    expect(Array.from(linear(x, mat(2, 2, Float64Array.of(1, 0, 1, 1)), Float64Array.of(0.5, 0)).data)).toEqual([1.5, 3]);
    const ln = layerNorm(mat(1, 2, Float64Array.of(1, 3)), Float64Array.of(2, 2), Float64Array.of(0, 1), 0);
    expect(Array.from(ln.data)).toEqual([-2, 3]);
    const rms = rmsNorm(mat(1, 2, Float64Array.of(3, 4)), Float64Array.of(1, 2), 0);
    const r = Math.sqrt(12.5);
    expect(rms.data[0]).toBeCloseTo(3 / r, 15);
    expect(rms.data[1]).toBeCloseTo(8 / r, 15);
  });

  it('softmax and RoPE tables', () => {
    const v = Float64Array.of(0, Math.log(3));
    softmaxInPlace(v, 2);
    expect(v[0]).toBeCloseTo(0.25, 15);
    const inv = stockInvFreq(4, 10000);
    expect(Array.from(inv)).toEqual([1, 0.01]);
    const t = ropeTablesFromInvFreq(inv, 3);
    expect(t.cos[2 * 2 + 0]).toBeCloseTo(Math.cos(2), 15);
    expect(t.sin[2 * 2 + 1]).toBeCloseTo(Math.sin(0.02), 15);
  });
});
