/**
 * Float64 building blocks for the reference forward pass. Deliberately naive loops written from
 * the layer definitions (PyTorch semantics), sharing nothing with the ONNX graph builder, so that a
 * mistake in one cannot hide the same mistake in the other.
 */

/** A dense row-major float64 matrix [rows, cols]. */
export interface Mat {
  rows: number;
  cols: number;
  data: Float64Array;
}

export function mat(rows: number, cols: number, data?: Float64Array): Mat {
  if (data && data.length !== rows * cols) {
    throw new Error(`matrix data has ${data.length} values, expected ${rows}x${cols}`);
  }
  return { rows, cols, data: data ?? new Float64Array(rows * cols) };
}

/** torch.nn.Linear: y = x W^T + b, with W stored [out, in] as in the checkpoint. */
export function linear(x: Mat, weight: Mat, bias?: Float64Array): Mat {
  if (weight.cols !== x.cols) throw new Error(`linear: input width ${x.cols} != weight in-features ${weight.cols}`);
  const out = mat(x.rows, weight.rows);
  const { cols: k } = x;
  for (let r = 0; r < x.rows; r++) {
    const xo = r * k;
    for (let o = 0; o < weight.rows; o++) {
      const wo = o * k;
      let acc = bias ? bias[o] : 0;
      for (let i = 0; i < k; i++) acc += x.data[xo + i] * weight.data[wo + i];
      out.data[r * weight.rows + o] = acc;
    }
  }
  return out;
}

/** torch.nn.LayerNorm over the last dimension (biased variance). */
export function layerNorm(x: Mat, weight: Float64Array, bias: Float64Array, eps: number): Mat {
  const out = mat(x.rows, x.cols);
  for (let r = 0; r < x.rows; r++) {
    const o = r * x.cols;
    let mean = 0;
    for (let i = 0; i < x.cols; i++) mean += x.data[o + i];
    mean /= x.cols;
    let variance = 0;
    for (let i = 0; i < x.cols; i++) variance += (x.data[o + i] - mean) ** 2;
    variance /= x.cols;
    const inv = 1 / Math.sqrt(variance + eps);
    for (let i = 0; i < x.cols; i++) out.data[o + i] = (x.data[o + i] - mean) * inv * weight[i] + bias[i];
  }
  return out;
}

/** Qwen2RMSNorm: x / sqrt(mean(x^2) + eps) * weight. */
export function rmsNorm(x: Mat, weight: Float64Array, eps: number): Mat {
  const out = mat(x.rows, x.cols);
  for (let r = 0; r < x.rows; r++) {
    const o = r * x.cols;
    let ms = 0;
    for (let i = 0; i < x.cols; i++) ms += x.data[o + i] ** 2;
    const inv = 1 / Math.sqrt(ms / x.cols + eps);
    for (let i = 0; i < x.cols; i++) out.data[o + i] = x.data[o + i] * inv * weight[i];
  }
  return out;
}

export function add(a: Mat, b: Mat): Mat {
  if (a.rows !== b.rows || a.cols !== b.cols) throw new Error('add: shape mismatch');
  const out = mat(a.rows, a.cols);
  for (let i = 0; i < a.data.length; i++) out.data[i] = a.data[i] + b.data[i];
  return out;
}

export function map(a: Mat, f: (v: number) => number): Mat {
  const out = mat(a.rows, a.cols);
  for (let i = 0; i < a.data.length; i++) out.data[i] = f(a.data[i]);
  return out;
}

/** gelu_pytorch_tanh (SigLIP's MLP). */
export function geluTanh(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
}

/** Exact GELU, x * Phi(x) (the projector's "gelu"). */
export function geluErf(x: number): number {
  return 0.5 * x * (1 + erf(x / Math.SQRT2));
}

export function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

/**
 * erf in float64: Maclaurin series for |x| < 2.5 (terms stay small enough that cancellation costs
 * < 1e-13), continued fraction for erfc beyond (Lentz's method).
 */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let term = x;
    let sum = x;
    const x2 = x * x;
    for (let n = 1; n < 200; n++) {
      term *= -x2 / n;
      const contrib = term / (2 * n + 1);
      sum += contrib;
      if (Math.abs(contrib) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  if (ax > 27) return Math.sign(x);
  // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...)))))
  const tiny = 1e-300;
  let f = ax;
  let c = ax;
  let d = 0;
  for (let n = 1; n < 300; n++) {
    const an = n / 2;
    d = ax + an * d;
    d = Math.abs(d) < tiny ? tiny : d;
    c = ax + an / c;
    c = Math.abs(c) < tiny ? tiny : c;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

/** Softmax of v[0..n) in place (max-subtracted). */
export function softmaxInPlace(v: Float64Array, n: number): void {
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (v[i] > max) max = v[i];
  let sum = 0;
  for (let i = 0; i < n; i++) {
    v[i] = Math.exp(v[i] - max);
    sum += v[i];
  }
  for (let i = 0; i < n; i++) v[i] /= sum;
}
