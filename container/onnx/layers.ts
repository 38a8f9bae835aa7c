/**
 * Reusable graph pieces on top of GraphBuilder: linear layers from [out, in] (PyTorch) weights,
 * dtype casts, and weight encoding to the package dtype.
 */
import { GraphScope, int, type OnnxDtype } from './graph-builder';
import { encodeFloat32 } from '../safetensors/numeric';

export type ComputeDtype = 'float32' | 'float16';

/** Float32 values → raw bytes of `dtype`. */
export function encodeAs(values: Float32Array, dtype: ComputeDtype): Buffer {
  return encodeFloat32(values, dtype === 'float32' ? 'F32' : 'F16');
}

/** Row-major [rows, cols] → [cols, rows], blocked for cache locality (large embedding matrices). */
export function transpose2d(src: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(src.length);
  const B = 64;
  for (let i0 = 0; i0 < rows; i0 += B) {
    const i1 = Math.min(rows, i0 + B);
    for (let j0 = 0; j0 < cols; j0 += B) {
      const j1 = Math.min(cols, j0 + B);
      for (let i = i0; i < i1; i++) {
        const rowBase = i * cols;
        for (let j = j0; j < j1; j++) out[j * rows + i] = src[rowBase + j];
      }
    }
  }
  return out;
}

/** Concatenates [out_k, in] matrices along the output dimension. */
export function concatRows(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function cast(g: GraphScope, value: string, from: ComputeDtype | 'float32', to: OnnxDtype): string {
  if (from === to) return value;
  const code = to === 'float32' ? 1 : to === 'float16' ? 10 : to === 'int32' ? 6 : 7;
  return g.op('Cast', [value], { to: int(code) });
}

/**
 * y = x·Wᵀ + b for a PyTorch Linear weight W [out, in]: stored transposed ([in, out]) so the
 * graph is a plain MatMul (the layout onnxruntime's MatMul kernels prefer), plus Add for the bias.
 */
export function linear(g: GraphScope, x: string, name: string, weight: Float32Array, outFeatures: number, inFeatures: number, bias: Float32Array | undefined, dtype: ComputeDtype): string {
  const wT = transpose2d(weight, outFeatures, inFeatures);
  const w = g.initializer(`${name}.weight`, dtype, [inFeatures, outFeatures], encodeAs(wT, dtype));
  let y = g.op('MatMul', [x, w]);
  if (bias) {
    const b = g.initializer(`${name}.bias`, dtype, [outFeatures], encodeAs(bias, dtype));
    y = g.op('Add', [y, b]);
  }
  return y;
}
