/** Hand-checked values for the float64 reference's building blocks. */
import { erf, geluErf, geluTanh, layerNorm, linear, mat, parseRefConfig, referenceBilinear, referenceVideoTokens, rmsNorm, ropeTablesFromInvFreq, softmaxInPlace, stockInvFreq } from '../../container/reference';

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

  it('bilinear (align_corners=False) and the video layout, by hand', () => {
    // 2 → 3 per axis: src = −1/6 → 0, 0.5, 7/6 → the last index: weights [x0], [(x0+x1)/2], [x1].
    expect(Array.from(referenceBilinear(mat(4, 1, Float64Array.of(1, 0, 0, 0)), 2, 3).data)).toEqual([1, 0.5, 0, 0.5, 0.25, 0, 0, 0, 0]);
    // 3 → 2 per axis: src = 0.25, 1.75; a 3×3 ramp 0…8 (value = 3y + x) pools to 3·src_y + src_x.
    const ramp = mat(9, 1, Float64Array.from({ length: 9 }, (_, i) => i));
    expect(Array.from(referenceBilinear(ramp, 3, 2).data)).toEqual([1, 2.5, 5.5, 7]);
    // Frames pooled in order by the schedule (K = 2, s_h = 1, s_l = 3 on a 3×3 grid: 9, 1, 9 tokens), then one newline.
    const frame = (v: number) => mat(9, 2, new Float64Array(18).fill(v));
    const seq = referenceVideoTokens([frame(1), frame(2), frame(3)], 3, { groupSize: 2, strideHigh: 1, strideLow: 3 }, Float64Array.of(-1, -2));
    expect(seq.rows).toBe(9 + 1 + 9 + 1);
    expect(Array.from(seq.data.subarray(18, 20))).toEqual([2, 2]);
    expect(seq.data[20]).toBe(3);
    expect(Array.from(seq.data.subarray(38))).toEqual([-1, -2]);
  });

  it("reads config.json with transformers' defaults for omitted keys (Qwen2Config rope_theta 10000)", () => {
    const vision = { hidden_size: 8, intermediate_size: 16, num_hidden_layers: 1, num_attention_heads: 2, image_size: 28, patch_size: 14 };
    const text = { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2, vocab_size: 10 };
    const c = parseRefConfig({ vision_config: vision, text_config: text });
    expect(c.text.ropeTheta).toBe(10000);
    expect(c.text.kvHeads).toBe(2);
    expect(c.text.tieWordEmbeddings).toBe(false);
    expect(c.vision.featureLayer).toBe(-1);
    expect(parseRefConfig({ vision_config: vision, text_config: { ...text, rope_theta: 1e6 } }).text.ropeTheta).toBe(1e6);
  });
});
