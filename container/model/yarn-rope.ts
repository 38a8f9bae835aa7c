/**
 * Rotary frequencies for one job: the paper's visual context window extension (Wei & Chen,
 * "Visual Context Window Extension", arXiv 2409.20018) and its comparison options.
 *
 * The paper applies YaRN's NTK-by-parts rule but sizes it by the *visual* context window L_v (the
 * visual tokens per sample seen in training) instead of the text window. Per rotary pair i:
 *   θ_i = b^(−2i/d), λ_i = 2π/θ_i, r_i = L_v/λ_i,
 *   γ_i = clamp((r_i − α)/(β − α), 0, 1)  (α = 1, β = 32),
 *   s = L_test/L_v  (L_test = visual tokens entering the decoder, after pooling, incl. image_newline),
 *   θ'_i = (γ_i + (1 − γ_i)/s)·θ_i, applied to every position (one global RoPE, so fused
 *   attention kernels such as onnxruntime's GroupQueryAttention keep working), no change when s ≤ 1.
 * High-frequency pairs (many rotations inside the window, r_i ≥ β) stay as trained; pairs that never
 * complete a rotation inside the window (r_i < α) are interpolated by exactly 1/s.
 *
 * Everything is computed in float64; the tables are cast once (float32, or fp16 bits for fp16
 * model packages) so that the only rounding is the final one.
 */
import type { RopeExtension, RopeMode } from '../../lib/contracts';

export interface RopeFrequencyInput {
  /** d: attention head dimension (rotary dimension; Qwen2 rotates the whole head). */
  headDim: number;
  /** b: the checkpoint's rope_theta. */
  ropeTheta: number;
  /** The job's extension settings (InferenceSettings.rope). */
  rope: RopeExtension;
  /** L_test: visual tokens in the decoder sequence after pooling, image_newline included. */
  visualTokens: number;
  /** The checkpoint's max_position_embeddings (the language window; 32768 for Qwen2). */
  languageWindow: number;
  /**
   * Whole decoder sequence (system + video + question + generated tokens). Only 'language-yarn'
   * uses it: text YaRN is sized by the largest position the decoder will see, so its s is
   * sequenceTokens / L_text. Absent: the visual token count stands in for it.
   */
  sequenceTokens?: number;
}

export interface RopeFrequencies {
  /** θ'_i for i = 0…d/2−1 (radians per position). */
  invFreq: Float64Array;
  /** s actually applied (1 when the frequencies are the stock ones). */
  scale: number;
  /**
   * Multiplies cos and sin: YaRN's temperature √(1/t) = 0.1·ln(s)+1 when `attentionTemperature` is
   * on and the extension applies (any mode but 'off', s > 1), else 1.
   */
  attentionFactor: number;
  /** The requested mode (recorded in the job's result item). */
  mode: RopeMode;
  /** False when the stock table is returned (mode 'off', window 0, or s ≤ 1). */
  applied: boolean;
  /** The window that sized the extension (L_v, or L_text for 'language-yarn'); 0 for 'off'. */
  window: number;
}

function requirePositiveInt(name: string, v: number): void {
  if (!Number.isInteger(v) || v <= 0) throw new RangeError(`${name} must be a positive integer, got ${v}`);
}
function requireNonNegativeInt(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0) throw new RangeError(`${name} must be a non-negative integer, got ${v}`);
}

/** Stock RoPE: θ_i = 1 / b^(2i/d) (the same expression as transformers' default rope init). */
export function stockInverseFrequencies(headDim: number, ropeTheta: number): Float64Array {
  requirePositiveInt('headDim', headDim);
  if (headDim % 2 !== 0) throw new RangeError(`headDim must be even for rotary embeddings, got ${headDim}`);
  if (!(ropeTheta > 1) || !Number.isFinite(ropeTheta)) throw new RangeError(`ropeTheta must be a finite number > 1, got ${ropeTheta}`);
  const half = headDim / 2;
  const out = new Float64Array(half);
  for (let i = 0; i < half; i++) out[i] = 1 / ropeTheta ** ((2 * i) / headDim);
  return out;
}

/**
 * The paper's rule: γ_i = clamp((r_i − α)/(β − α), 0, 1) with r_i = window/λ_i; θ'_i = (γ_i + (1 − γ_i)/s)·θ_i.
 * Exported for tests and for the planner's report.
 */
export function ratioRampGamma(theta: Float64Array, window: number, alpha: number, beta: number): Float64Array {
  const gamma = new Float64Array(theta.length);
  for (let i = 0; i < theta.length; i++) {
    const lambda = (2 * Math.PI) / theta[i];
    const r = window / lambda;
    gamma[i] = Math.min(1, Math.max(0, (r - alpha) / (beta - alpha)));
  }
  return gamma;
}

/**
 * transformers' `_compute_yarn_parameters` ramp, reproduced: the correction dimensions for
 * beta_fast (= β) and beta_slow (= α) rotations inside original_max_position_embeddings (= the
 * window), floored/ceiled and clipped to [0, d−1] (sic: d−1, not d/2−1, as transformers does), then a
 * ramp linear in the pair index. Returns γ_i = 1 − ramp_i (1 = keep θ_i, 0 = θ_i/s), so both ramps
 * plug into the same mix θ'_i = (γ_i + (1 − γ_i)/s)·θ_i (transformers' extrapolation factor).
 */
export function transformersRampGamma(headDim: number, ropeTheta: number, window: number, alpha: number, beta: number): Float64Array {
  const correctionDim = (rotations: number) =>
    (headDim * Math.log(window / (rotations * 2 * Math.PI))) / (2 * Math.log(ropeTheta));
  const low = Math.max(Math.floor(correctionDim(beta)), 0);
  let high = Math.min(Math.ceil(correctionDim(alpha)), headDim - 1);
  if (low === high) high += 0.001; // transformers: "Prevent singularity"
  const half = headDim / 2;
  const gamma = new Float64Array(half);
  for (let i = 0; i < half; i++) {
    const ramp = Math.min(1, Math.max(0, (i - low) / (high - low)));
    gamma[i] = 1 - ramp;
  }
  return gamma;
}

/** YaRN's attention temperature factor: 0.1·ln(s) + 1 for s > 1 (transformers' get_mscale). */
export function yarnAttentionFactor(scale: number): number {
  return scale <= 1 ? 1 : 0.1 * Math.log(scale) + 1;
}

/** The rotary inverse frequencies (and the s, temperature) for one job. Pure. */
export function computeRopeFrequencies(input: RopeFrequencyInput): RopeFrequencies {
  const { headDim, ropeTheta, rope, visualTokens, languageWindow } = input;
  const stock = stockInverseFrequencies(headDim, ropeTheta);
  requireNonNegativeInt('visualTokens', visualTokens);
  requirePositiveInt('languageWindow', languageWindow);
  if (input.sequenceTokens !== undefined) requireNonNegativeInt('sequenceTokens', input.sequenceTokens);
  if (!(rope.beta > rope.alpha)) throw new RangeError(`rope.beta (${rope.beta}) must be greater than rope.alpha (${rope.alpha})`);

  const unchanged = (window: number): RopeFrequencies => ({ invFreq: stock, scale: 1, attentionFactor: 1, mode: rope.mode, applied: false, window });

  let window: number;
  let lTest: number;
  switch (rope.mode) {
    case 'off':
      return unchanged(0);
    case 'visual-yarn':
    case 'position-interpolation':
      window = rope.visualContextWindow;
      lTest = visualTokens;
      break;
    case 'language-yarn':
      window = rope.languageContextWindow ?? languageWindow;
      lTest = input.sequenceTokens ?? visualTokens;
      break;
    default: {
      const never: never = rope.mode;
      throw new RangeError(`unknown rope mode ${String(never)}`);
    }
  }
  // L_v = 0 disables the extension; s ≤ 1 means the job fits the window: the stock table, bit for bit.
  if (window === 0) return unchanged(0);
  const s = lTest / window;
  if (s <= 1) return unchanged(window);

  let gamma: Float64Array;
  if (rope.mode === 'position-interpolation') gamma = new Float64Array(stock.length); // γ = 0: every θ/s
  else if (rope.ramp === 'transformers') gamma = transformersRampGamma(headDim, ropeTheta, window, rope.alpha, rope.beta);
  else gamma = ratioRampGamma(stock, window, rope.alpha, rope.beta);

  const invFreq = new Float64Array(stock.length);
  for (let i = 0; i < stock.length; i++) invFreq[i] = (gamma[i] + (1 - gamma[i]) / s) * stock[i];
  return {
    invFreq,
    scale: s,
    attentionFactor: rope.attentionTemperature ? yarnAttentionFactor(s) : 1,
    mode: rope.mode,
    applied: true,
    window,
  };
}

export type RopeTableDtype = 'float32' | 'float16';

export interface RopeTables<T extends Float32Array | Uint16Array = Float32Array | Uint16Array> {
  /** [positions, headDim/2], row-major: cos(p·θ'_i)·attentionFactor. fp16 tables hold IEEE half bits. */
  cos: T;
  sin: T;
  dims: [number, number];
}

const f64 = new Float64Array(1);
const f64Bits = new Uint32Array(f64.buffer);
const HI = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0; // little-endian: high word at index 1

/**
 * float64 → IEEE 754 half bits, round to nearest even, directly from the double (no double rounding
 * through float32). Handles subnormals, overflow to ±Inf and NaN.
 */
export function float64ToFloat16Bits(x: number): number {
  f64[0] = x;
  const hi = f64Bits[HI];
  const sign = (hi >>> 31) << 15;
  const exp = (hi >>> 20) & 0x7ff;
  if (exp === 0x7ff) return sign | 0x7c00 | (Number.isNaN(x) ? 0x200 : 0);
  const a = Math.abs(x);
  if (a === 0) return sign;
  // Quantum of the half-precision binade holding a (subnormal halves share the quantum 2^-24).
  const e = Math.max(exp - 1023, -14);
  const m = a / 2 ** (e - 10); // exact: division by a power of two
  let r = Math.round(m);
  if (r - m === 0.5 && r % 2 === 1) r -= 1; // ties to even (Math.round rounds ties up)
  const bits = ((e + 15) << 10) + r - 1024; // a carry out of the mantissa bumps the exponent, as it should
  return bits >= 0x7c00 ? sign | 0x7c00 : sign | bits;
}

/**
 * cos/sin tables for positions start…start+count−1 (the `cos_cache`/`sin_cache` inputs of
 * onnxruntime's com.microsoft.GroupQueryAttention, rotate-half convention: [max_seq, d/2]).
 * The attention factor multiplies both, as transformers' rotary embedding does with its
 * `attention_scaling`. Angles and cos/sin are float64; one cast at the end.
 */
export function buildRopeTables(
  freqs: Pick<RopeFrequencies, 'invFreq' | 'attentionFactor'>,
  count: number,
  dtype: 'float32',
  start?: number,
): RopeTables<Float32Array>;
export function buildRopeTables(
  freqs: Pick<RopeFrequencies, 'invFreq' | 'attentionFactor'>,
  count: number,
  dtype: 'float16',
  start?: number,
): RopeTables<Uint16Array>;
export function buildRopeTables(
  freqs: Pick<RopeFrequencies, 'invFreq' | 'attentionFactor'>,
  count: number,
  dtype: RopeTableDtype,
  start?: number,
): RopeTables;
export function buildRopeTables(
  freqs: Pick<RopeFrequencies, 'invFreq' | 'attentionFactor'>,
  count: number,
  dtype: RopeTableDtype = 'float32',
  start = 0,
): RopeTables {
  requireNonNegativeInt('count', count);
  requireNonNegativeInt('start', start);
  const half = freqs.invFreq.length;
  const n = count * half;
  const cos = dtype === 'float16' ? new Uint16Array(n) : new Float32Array(n);
  const sin = dtype === 'float16' ? new Uint16Array(n) : new Float32Array(n);
  const af = freqs.attentionFactor;
  for (let p = 0; p < count; p++) {
    const pos = start + p;
    const row = p * half;
    for (let i = 0; i < half; i++) {
      const angle = pos * freqs.invFreq[i];
      const c = Math.cos(angle) * af;
      const s = Math.sin(angle) * af;
      if (dtype === 'float16') {
        cos[row + i] = float64ToFloat16Bits(c);
        sin[row + i] = float64ToFloat16Bits(s);
      } else {
        cos[row + i] = c;
        sin[row + i] = s;
      }
    }
  }
  return { cos, sin, dims: [count, half] };
}
