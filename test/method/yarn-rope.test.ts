/**
 * The visual context window extension (DESIGN.md, "The paper's two mechanisms" §1), checked against
 * values derived by hand from the formulas, not against the implementation's own helpers.
 */
import { RopeExtensionSchema, type RopeExtension } from '../../lib/contracts';
import {
  buildRopeTables,
  computeRopeFrequencies,
  float64ToFloat16Bits,
  stockInverseFrequencies,
  transformersRampGamma,
} from '../../container/model/yarn-rope';

const rope = (over: Partial<RopeExtension> = {}): RopeExtension => RopeExtensionSchema.parse(over);
const QWEN2_WINDOW = 32768;

/** Stock θ_i written out independently: b^(−2i/d). */
function theta(b: number, d: number, i: number): number {
  return Math.pow(b, (-2 * i) / d);
}

describe('stock frequencies', () => {
  it('are b^(-2i/d)', () => {
    const f = stockInverseFrequencies(64, 1e6);
    expect(f.length).toBe(32);
    expect(f[0]).toBe(1);
    for (let i = 0; i < 32; i++) expect(f[i]).toBeCloseTo(theta(1e6, 64, i), 15);
    // θ_16 = 1e6^(-1/2) = 1e-3 exactly up to rounding
    expect(Math.abs(f[16] - 1e-3) / 1e-3).toBeLessThan(1e-15);
  });

  it('reject odd head dims and bad theta with a clear message', () => {
    expect(() => stockInverseFrequencies(63, 1e6)).toThrow(/headDim must be even/);
    expect(() => stockInverseFrequencies(64, 1)).toThrow(/ropeTheta/);
  });
});

describe("the paper's rule (ratio ramp, α = 1, β = 32)", () => {
  // d = 64, b = 1e6, L_v = 6272 (hand-derived): r_i = L_v·θ_i/2π.
  //   r_i ≥ 32  ⟺ b^(2i/d) ≤ 6272/(2π·32) = 31.19  ⟺ i ≤ 32·ln 31.19/ln 1e6 = 7.97  → i = 0…7 unchanged
  //   r_i < 1   ⟺ b^(2i/d) > 6272/(2π)    = 998.2  ⟺ i > 32·ln 998.2/ln 1e6 = 15.996 → i = 16…31 divided by s
  //   i = 12: θ = 10^-2.25 = 0.005623413251903491, λ = 1117.3259061216543, r = 5.613402468909645,
  //           γ = (r − 1)/31 = 0.1488194344809563; with s = 2, θ' = 0.0032301432159522413.
  const base = { headDim: 64, ropeTheta: 1e6, rope: rope(), languageWindow: QWEN2_WINDOW };

  it('keeps the high-frequency dimensions, divides the low ones by s exactly, ramps between', () => {
    const r = computeRopeFrequencies({ ...base, visualTokens: 2 * 6272 });
    expect(r.applied).toBe(true);
    expect(r.scale).toBe(2);
    expect(r.attentionFactor).toBe(1); // the paper applies no temperature
    expect(r.mode).toBe('visual-yarn');
    expect(r.window).toBe(6272);
    const stock = stockInverseFrequencies(64, 1e6);
    for (let i = 0; i <= 7; i++) expect(r.invFreq[i]).toBe(stock[i]);
    for (let i = 16; i < 32; i++) expect(r.invFreq[i]).toBe(stock[i] / 2); // s = 2: exact in binary
    expect(Math.abs(r.invFreq[12] - 0.0032301432159522413) / 0.0032301432159522413).toBeLessThan(1e-14);
    for (let i = 8; i <= 15; i++) {
      expect(r.invFreq[i]).toBeLessThan(stock[i]);
      expect(r.invFreq[i]).toBeGreaterThan(stock[i] / 2);
    }
  });

  it('the mix coefficient is linear in r_i = L_v/λ_i between α and β', () => {
    const s = 3.7;
    const r = computeRopeFrequencies({ ...base, visualTokens: Math.round(6272 * s) });
    const sActual = Math.round(6272 * s) / 6272;
    for (let i = 0; i < 32; i++) {
      const th = theta(1e6, 64, i);
      const ri = 6272 / ((2 * Math.PI) / th);
      const gamma = (r.invFreq[i] / th - 1 / sActual) / (1 - 1 / sActual); // recover γ_i from θ'_i
      const expected = Math.min(1, Math.max(0, (ri - 1) / 31));
      expect(Math.abs(gamma - expected)).toBeLessThan(1e-12);
    }
  });

  it.each([
    [64, 1e6, 1.5],
    [64, 1e6, 8],
    [128, 1e6, 4],
    [128, 1e4, 2.5],
    [64, 5e5, 16],
    [80, 1e4, 1.01],
  ])('d = %i, b = %d, s = %d: unchanged where r ≥ β, θ/s where r < α, monotone in between', (d, b, s) => {
    const lv = 6272;
    const lTest = Math.round(lv * s);
    const sActual = lTest / lv;
    const r = computeRopeFrequencies({ headDim: d, ropeTheta: b, rope: rope({ visualContextWindow: lv }), visualTokens: lTest, languageWindow: QWEN2_WINDOW });
    expect(r.scale).toBe(sActual);
    let prevRatio = 1;
    for (let i = 0; i < d / 2; i++) {
      const th = theta(b, d, i);
      const ri = (lv * th) / (2 * Math.PI);
      const ratio = r.invFreq[i] / th;
      if (ri >= 32) expect(Math.abs(ratio - 1)).toBeLessThan(1e-15);
      else if (ri < 1) expect(Math.abs(ratio - 1 / sActual)).toBeLessThan(1e-15);
      else {
        const g = (ri - 1) / 31;
        expect(Math.abs(ratio - (g + (1 - g) / sActual))).toBeLessThan(1e-14);
      }
      expect(ratio).toBeLessThanOrEqual(prevRatio + 1e-15); // lower frequencies are interpolated more
      prevRatio = ratio;
    }
    expect(r.invFreq[0]).toBe(1); // the highest-frequency pair (θ_0 = 1, r_0 = L_v/2π ≫ β) never changes
  });

  it('s ≤ 1, L_v = 0 and mode off give the stock table bit for bit', () => {
    const stock = stockInverseFrequencies(64, 1e6);
    const stockTables = buildRopeTables({ invFreq: stock, attentionFactor: 1 }, 300, 'float32');
    const cases = [
      computeRopeFrequencies({ ...base, visualTokens: 6272 }), // s = 1
      computeRopeFrequencies({ ...base, visualTokens: 100 }),
      computeRopeFrequencies({ ...base, visualTokens: 0 }),
      computeRopeFrequencies({ ...base, rope: rope({ visualContextWindow: 0 }), visualTokens: 50176 }),
      computeRopeFrequencies({ ...base, rope: rope({ mode: 'off' }), visualTokens: 50176 }),
      computeRopeFrequencies({ ...base, rope: rope({ attentionTemperature: true }), visualTokens: 6000 }),
      computeRopeFrequencies({ ...base, rope: rope({ mode: 'position-interpolation' }), visualTokens: 6272 }),
    ];
    for (const c of cases) {
      expect(c.applied).toBe(false);
      expect(c.scale).toBe(1);
      expect(c.attentionFactor).toBe(1);
      expect(Array.from(c.invFreq)).toEqual(Array.from(stock));
      const t = buildRopeTables(c, 300, 'float32');
      expect(Buffer.from(t.cos.buffer).equals(Buffer.from(stockTables.cos.buffer))).toBe(true);
      expect(Buffer.from(t.sin.buffer).equals(Buffer.from(stockTables.sin.buffer))).toBe(true);
    }
  });

  it('rejects impossible inputs with a message naming them', () => {
    expect(() => computeRopeFrequencies({ ...base, visualTokens: -1 })).toThrow(/visualTokens/);
    expect(() => computeRopeFrequencies({ ...base, visualTokens: 1.5 })).toThrow(/visualTokens/);
    expect(() => computeRopeFrequencies({ ...base, languageWindow: 0, visualTokens: 10 })).toThrow(/languageWindow/);
    expect(() => computeRopeFrequencies({ ...base, rope: { ...rope(), alpha: 40 }, visualTokens: 10 })).toThrow(/beta/);
  });
});

describe('options', () => {
  it("YaRN temperature 0.1·ln(s)+1 multiplies cos and sin", () => {
    const r = computeRopeFrequencies({ headDim: 64, ropeTheta: 1e6, rope: rope({ attentionTemperature: true }), visualTokens: 4 * 6272, languageWindow: QWEN2_WINDOW });
    expect(r.scale).toBe(4);
    expect(r.attentionFactor).toBeCloseTo(1.1386294361119891, 15); // 0.1·ln 4 + 1
    const t = buildRopeTables(r, 3, 'float32');
    expect(t.cos[0]).toBe(Math.fround(1.1386294361119891)); // position 0: cos 0 · factor
    expect(t.sin[0]).toBe(0);
    expect(t.cos[32]).toBe(Math.fround(Math.cos(1) * 1.1386294361119891)); // position 1, θ'_0 = 1
    expect(t.sin[32]).toBe(Math.fround(Math.sin(1) * 1.1386294361119891));
  });

  it('position interpolation divides every frequency by s', () => {
    const r = computeRopeFrequencies({ headDim: 64, ropeTheta: 1e6, rope: rope({ mode: 'position-interpolation' }), visualTokens: 4 * 6272, languageWindow: QWEN2_WINDOW });
    const stock = stockInverseFrequencies(64, 1e6);
    for (let i = 0; i < 32; i++) expect(r.invFreq[i]).toBe(stock[i] / 4);
  });

  it("transformers ramp, d = 64, b = 1e6, window 6272: low = floor(7.968) = 7, high = ceil(15.996) = 16", () => {
    // find_correction_dim(32) = 64·ln(6272/(32·2π))/(2·ln 1e6) = 7.968; (1) = 64·ln(6272/2π)/(2·ln 1e6) = 15.996.
    // ramp_i = clamp((i − 7)/9, 0, 1); extrapolation factor 1 − ramp_i keeps θ_i.
    const g = transformersRampGamma(64, 1e6, 6272, 1, 32);
    for (let i = 0; i <= 7; i++) expect(g[i]).toBe(1);
    expect(g[10]).toBeCloseTo(2 / 3, 15);
    expect(g[13]).toBeCloseTo(1 / 3, 15);
    for (let i = 16; i < 32; i++) expect(g[i]).toBe(0);
    const s = 2;
    const r = computeRopeFrequencies({ headDim: 64, ropeTheta: 1e6, rope: rope({ ramp: 'transformers' }), visualTokens: s * 6272, languageWindow: QWEN2_WINDOW });
    const th10 = theta(1e6, 64, 10);
    expect(Math.abs(r.invFreq[10] - (2 / 3 + 1 / 3 / s) * th10) / th10).toBeLessThan(1e-14);
    expect(r.invFreq[0]).toBe(1);
    expect(r.invFreq[20]).toBe(stockInverseFrequencies(64, 1e6)[20] / 2);
  });

  it('transformers ramp clips a negative low correction dim to 0 (d = 16, b = 1e4, window 64)', () => {
    // dim(32) = 16·ln(64/(64π))/(2 ln 1e4) = −0.994 → floor −1 → 0; dim(1) = 16·ln(64/2π)/(2 ln 1e4) = 2.016 → ceil 3.
    const g = transformersRampGamma(16, 1e4, 64, 1, 32);
    expect(Array.from(g).map((x) => +x.toFixed(12))).toEqual([1, +(2 / 3).toFixed(12), +(1 / 3).toFixed(12), 0, 0, 0, 0, 0]);
  });

  it('language-yarn is sized by the text window and the whole sequence', () => {
    const common = { headDim: 64, ropeTheta: 1e6, visualTokens: 50177, languageWindow: QWEN2_WINDOW };
    const r = computeRopeFrequencies({ ...common, rope: rope({ mode: 'language-yarn' }), sequenceTokens: 65536 });
    expect(r.window).toBe(32768);
    expect(r.scale).toBe(2);
    // r_i = 32768·θ_i/2π: unchanged where r ≥ 32 ⟺ i ≤ 32·ln(32768/(64π))/ln 1e6 = 11.78
    const stock = stockInverseFrequencies(64, 1e6);
    for (let i = 0; i <= 11; i++) expect(r.invFreq[i]).toBe(stock[i]);
    expect(r.invFreq[31]).toBe(stock[31] / 2);
    // Without the sequence length the visual count stands in; an explicit text window overrides max_position_embeddings.
    expect(computeRopeFrequencies({ ...common, rope: rope({ mode: 'language-yarn' }) }).scale).toBe(50177 / 32768);
    expect(computeRopeFrequencies({ ...common, rope: rope({ mode: 'language-yarn', languageContextWindow: 8192 }), sequenceTokens: 16384 }).scale).toBe(2);
    // Fits the text window: stock
    expect(computeRopeFrequencies({ ...common, visualTokens: 12545, rope: rope({ mode: 'language-yarn' }), sequenceTokens: 12800 }).applied).toBe(false);
  });
});

describe('tables', () => {
  it('are cos/sin(p·θ′) for [positions, d/2], from any start position', () => {
    const r = computeRopeFrequencies({ headDim: 8, ropeTheta: 1e4, rope: rope({ visualContextWindow: 16 }), visualTokens: 64, languageWindow: 32768 });
    const t = buildRopeTables(r, 5, 'float32', 100);
    expect(t.dims).toEqual([5, 4]);
    expect(t.cos).toBeInstanceOf(Float32Array);
    for (let p = 0; p < 5; p++) {
      for (let i = 0; i < 4; i++) {
        expect(t.cos[p * 4 + i]).toBe(Math.fround(Math.cos((100 + p) * r.invFreq[i])));
        expect(t.sin[p * 4 + i]).toBe(Math.fround(Math.sin((100 + p) * r.invFreq[i])));
      }
    }
  });

  it('fp16 tables hold correctly rounded half bits', () => {
    const r = computeRopeFrequencies({ headDim: 8, ropeTheta: 1e4, rope: rope(), visualTokens: 10, languageWindow: 32768 });
    const t = buildRopeTables(r, 4, 'float16');
    expect(t.cos).toBeInstanceOf(Uint16Array);
    expect(t.cos[0]).toBe(0x3c00); // cos 0 = 1
    expect(t.sin[0]).toBe(0);
    expect(t.cos[4]).toBe(float64ToFloat16Bits(Math.cos(1)));
  });

  it('float64 → half rounding matches numpy (round to nearest even, subnormals, overflow)', () => {
    // Reference bits from numpy: np.array([v], np.float64).astype(np.float16).view(np.uint16)
    const cases: [number, number][] = [
      [1, 0x3c00], [0.5, 0x3800], [-2, 0xc000], [0, 0], [-0, 0x8000],
      [0.1, 0x2e66], [-0.3333333333333333, 0xb555], [0.7071067811865476, 0x39a8],
      [1e-5, 0x00a8], [6.1e-5, 0x03ff], [3e-8, 0x0001], [2 ** -25, 0], [1.5 * 2 ** -25, 1],
      [0.99951171875, 0x3bff], [0.999755859375, 0x3c00], [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02],
      [1.1386294361119891, 0x3c8e], [-0.00048828125, 0x9000],
      [65504, 0x7bff], [65519.99, 0x7bff], [65520, 0x7c00], [1e9, 0x7c00], [-Infinity, 0xfc00],
    ];
    for (const [v, bits] of cases) expect([v, float64ToFloat16Bits(v)]).toEqual([v, bits]);
    expect(float64ToFloat16Bits(NaN) & 0x7c00).toBe(0x7c00);
    expect(float64ToFloat16Bits(NaN) & 0x3ff).not.toBe(0);
  });
});
