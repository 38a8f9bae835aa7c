/**
 * The stock LLaVA-OneVision frame pooling: PyTorch `F.interpolate(x, size=(outH, outW),
 * mode="bilinear", align_corners=False)` (antialias off) on one frame's feature grid.
 *
 * Semantics reproduced from PyTorch's upsample_bilinear2d (size given, so scale = in/out):
 *   src = (dst + 0.5)·(in/out) − 0.5, clamped at 0 from below (half-pixel centres);
 *   i0 = floor(src), i1 = i0 + 1 unless i0 is the last index (edge clamping);
 *   w1 = src − i0, w0 = 1 − w1; separable in rows and columns.
 * Layout here is token-major, as the projector emits it: [h·w, D], row-major over (h, w), channels
 * last; output [outH·outW, D].
 *
 * Precision: weights and the 4-tap sum are computed in float64 and cast once to float32. PyTorch
 * computes them in float32, so results may differ from it by about one float32 ulp; float64 makes
 * the result independent of summation order and exactly checkable against hand-derived values,
 * and the decoder consumes float32/fp16 anyway.
 */

export interface ResizeTaps {
  /** Lower source index per output index. */
  i0: Int32Array;
  /** Upper source index (== i0 at the last row/column). */
  i1: Int32Array;
  /** Weight of i0 (w0) and of i1 (w1 = 1 − w0). */
  w0: Float64Array;
  w1: Float64Array;
}

/** PyTorch's area_pixel_compute_source_index + the bilinear neighbour/weight rule, for one axis. */
export function bilinearTaps(inSize: number, outSize: number): ResizeTaps {
  if (!Number.isInteger(inSize) || inSize < 1) throw new RangeError(`input size must be a positive integer, got ${inSize}`);
  if (!Number.isInteger(outSize) || outSize < 1) throw new RangeError(`output size must be a positive integer, got ${outSize}`);
  const scale = inSize / outSize;
  const taps: ResizeTaps = { i0: new Int32Array(outSize), i1: new Int32Array(outSize), w0: new Float64Array(outSize), w1: new Float64Array(outSize) };
  for (let o = 0; o < outSize; o++) {
    const src = Math.max(scale * (o + 0.5) - 0.5, 0);
    const i0 = Math.floor(src);
    const i1 = i0 < inSize - 1 ? i0 + 1 : i0;
    const w1 = src - i0;
    taps.i0[o] = i0;
    taps.i1[o] = i1;
    taps.w1[o] = w1;
    taps.w0[o] = 1 - w1;
  }
  return taps;
}

export interface GridShape {
  height: number;
  width: number;
  /** Channels (feature width D). */
  channels: number;
}

/**
 * Resizes one token-major grid [h·w, D] to [outH·outW, D]. `out`/`outOffset` let callers write
 * straight into a larger sequence buffer (progressive pooling does).
 */
export function bilinearResize(
  input: Float32Array,
  shape: GridShape,
  outHeight: number,
  outWidth: number,
  out: Float32Array = new Float32Array(outHeight * outWidth * shape.channels),
  outOffset = 0,
  inOffset = 0,
): Float32Array {
  const { height: h, width: w, channels: d } = shape;
  if (!Number.isInteger(d) || d < 1) throw new RangeError(`channels must be a positive integer, got ${d}`);
  if (input.length - inOffset < h * w * d) {
    throw new RangeError(`input holds ${input.length - inOffset} values from offset ${inOffset}, a ${h}x${w}x${d} grid needs ${h * w * d}`);
  }
  if (out.length - outOffset < outHeight * outWidth * d) {
    throw new RangeError(`output holds ${out.length - outOffset} values from offset ${outOffset}, a ${outHeight}x${outWidth}x${d} grid needs ${outHeight * outWidth * d}`);
  }
  const rows = bilinearTaps(h, outHeight);
  const cols = bilinearTaps(w, outWidth);
  for (let oy = 0; oy < outHeight; oy++) {
    const r0 = inOffset + rows.i0[oy] * w * d;
    const r1 = inOffset + rows.i1[oy] * w * d;
    const wy0 = rows.w0[oy];
    const wy1 = rows.w1[oy];
    for (let ox = 0; ox < outWidth; ox++) {
      const c0 = cols.i0[ox] * d;
      const c1 = cols.i1[ox] * d;
      const wx0 = cols.w0[ox];
      const wx1 = cols.w1[ox];
      const a = wy0 * wx0; // weights of the four taps (products in float64)
      const b = wy0 * wx1;
      const c = wy1 * wx0;
      const e = wy1 * wx1;
      const p00 = r0 + c0;
      const p01 = r0 + c1;
      const p10 = r1 + c0;
      const p11 = r1 + c1;
      const o = outOffset + (oy * outWidth + ox) * d;
      for (let k = 0; k < d; k++) {
        // PyTorch's order: h0λ·(w0λ·x00 + w1λ·x01) + h1λ·(w0λ·x10 + w1λ·x11); in float64 the grouping
        // only moves the last bits, and the one cast to float32 happens here.
        out[o + k] = a * input[p00 + k] + b * input[p01 + k] + c * input[p10 + k] + e * input[p11 + k];
      }
    }
  }
  return out;
}

/**
 * The same resize as an interpolation matrix W [outSize, inSize] (row-major, float32): row o holds
 * w0 at i0 and w1 at i1 of bilinearTaps (summed where they coincide). The vision graph pools a grid
 * X as W·X·Wᵀ (container/convert/vision-graph.ts), which is exact to fp32 rounding of these weights,
 * where ONNX `Resize` (linear, half_pixel) differs from PyTorch by up to 4.7e-6 at strides 2, 4, 6.
 *
 * The weights are the exact (float64) half-pixel weights, rounded once, as in bilinearResize.
 * PyTorch's CPU kernel computes the source coordinate in float32, so at large indices (ulp(26) ≈
 * 1.9e-6) its λ can be off by ~1e-6, i.e. up to ~1e-6·|x| in the output; we keep the exact weights,
 * which the host pooling and the float64 reference (container/reference/pooling.ts) also use.
 */
export function bilinearMatrix(inSize: number, outSize: number): Float32Array {
  const taps = bilinearTaps(inSize, outSize);
  const w = new Float64Array(outSize * inSize);
  for (let o = 0; o < outSize; o++) {
    w[o * inSize + taps.i0[o]] += taps.w0[o];
    w[o * inSize + taps.i1[o]] += taps.w1[o];
  }
  return Float32Array.from(w);
}
