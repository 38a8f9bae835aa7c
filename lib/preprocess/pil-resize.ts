/**
 * Pillow's `Image.resize(size, filter)` for 8-bit RGB, reproduced bit for bit (the reference
 * processor, transformers' LlavaOnevisionVideoProcessor, resizes every frame with PIL BICUBIC).
 * Written here because no library does it: sharp/libvips, swscale and torch's cubic kernels use
 * the same a = -0.5 curve but other tap placement and rounding (up to 183 levels apart when
 * upscaling), and the model should see what the reference pipeline feeds it.
 *
 * The facts, from Pillow's src/libImaging/Resample.c (unchanged from 9.x to 11.x):
 * - separable convolution, the horizontal pass first, then the vertical pass over the horizontal
 *   pass's output stored as 8-bit (rounded and clipped between the passes); a pass whose size does
 *   not change is skipped, and the horizontal pass only runs over the rows the vertical one reads;
 * - per output pixel xx: centre = (xx + 0.5)·scale with scale = in/out; filterscale = max(scale, 1)
 *   (the kernel widens when downscaling: antialiasing); support = filter.support·filterscale; taps
 *   from xmin = trunc(centre − support + 0.5) (≥ 0) to xmax = trunc(centre + support + 0.5) (≤ in);
 *   weight(x) = filter((x − centre + 0.5) · (1/filterscale)), normalised to sum 1;
 * - weights to fixed point with PRECISION_BITS = 22 (round half away from zero); each sum starts
 *   at 2^21 (rounding) and the result is clip8(sum >> 22) into 0..255.
 * JS doubles are IEEE binary64 like C's double, and every partial sum stays below 2^31, so the
 * integer arithmetic is exact and the output equals Pillow's on x86-64 (a C compiler that fuses
 * multiply-adds, as on some ARM builds, can move a weight by one unit in the last place).
 */

/** PIL's filter ids (Image.Resampling) for the convolution filters. */
export const PIL_FILTERS = { lanczos: 1, bilinear: 2, bicubic: 3, box: 4, hamming: 5 } as const;

interface Filter {
  name: string;
  support: number;
  weight: (x: number) => number;
}

/** Keys' cubic convolution with a = −0.5 (Catmull-Rom), PIL's BICUBIC. */
function bicubic(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

function sinc(x: number): number {
  if (x === 0) return 1;
  x *= Math.PI;
  return Math.sin(x) / x;
}

const FILTERS: Record<number, Filter> = {
  [PIL_FILTERS.bicubic]: { name: 'bicubic', support: 2, weight: bicubic },
  [PIL_FILTERS.bilinear]: { name: 'bilinear', support: 1, weight: (x) => (x < 0 ? (x > -1 ? 1 + x : 0) : x < 1 ? 1 - x : 0) },
  [PIL_FILTERS.lanczos]: { name: 'lanczos', support: 3, weight: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
  [PIL_FILTERS.box]: { name: 'box', support: 0.5, weight: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
  [PIL_FILTERS.hamming]: {
    name: 'hamming',
    support: 1,
    weight: (x) => {
      if (x < 0) x = -x;
      if (x === 0) return 1;
      if (x >= 1) return 0;
      x *= Math.PI;
      // Pillow writes the constants as C floats: 0.54f and 0.46f.
      return (Math.sin(x) / x) * (Math.fround(0.54) + Math.fround(0.46) * Math.cos(x));
    },
  },
};

export function pilFilter(id: number): Filter {
  const f = FILTERS[id];
  if (!f) throw new Error(`unsupported processor resample filter ${id} (supported PIL ids: 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming)`);
  return f;
}

import { resizeRgbWasm } from './pil-resize-wasm';

const PRECISION_BITS = 22;
const HALF = 1 << (PRECISION_BITS - 1);

/** One axis's taps: for output i, weights kk[i·ksize …] over input [bounds[2i], bounds[2i] + bounds[2i+1]). */
export interface AxisCoefficients {
  ksize: number;
  bounds: Int32Array;
  kk: Int32Array;
}

/** precompute_coeffs + normalize_coeffs_8bpc for one axis (box = the whole input). */
export function axisCoefficients(inSize: number, outSize: number, filter: Filter): AxisCoefficients {
  const scale = inSize / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const invFilterscale = 1 / filterscale;
  const w = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      w[x] = filter.weight((x + xmin - center + 0.5) * invFilterscale);
      ww += w[x];
    }
    for (let x = 0; x < xmax; x++) {
      const k = ww !== 0 ? w[x] / ww : w[x];
      kk[xx * ksize + x] = Math.trunc(k < 0 ? -0.5 + k * (1 << PRECISION_BITS) : 0.5 + k * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

/** clip8: the fixed-point sum to a byte (sums stay within int32, so `| 0` keeps V8 on integer math). */
const clip8 = (ss: number): number => {
  const v = ss >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
};

/** Horizontal pass over `rows` rows of `src` starting at `firstRow`, `channels` interleaved bytes per pixel. */
function horizontalPass(src: Uint8Array, inWidth: number, firstRow: number, rows: number, channels: number, c: AxisCoefficients, outWidth: number): Uint8Array {
  const out = new Uint8Array(outWidth * rows * channels);
  const { ksize, bounds, kk } = c;
  const inStride = inWidth * channels;
  let o = 0;
  for (let yy = 0; yy < rows; yy++) {
    const rowIn = (yy + firstRow) * inStride;
    for (let xx = 0; xx < outWidth; xx++) {
      const first = xx * ksize;
      const end = first + bounds[xx * 2 + 1];
      const start = rowIn + bounds[xx * 2] * channels;
      if (channels === 3) {
        let ss0 = HALF;
        let ss1 = HALF;
        let ss2 = HALF;
        for (let t = first, p = start; t < end; t++, p += 3) {
          const k = kk[t];
          ss0 = (ss0 + src[p] * k) | 0;
          ss1 = (ss1 + src[p + 1] * k) | 0;
          ss2 = (ss2 + src[p + 2] * k) | 0;
        }
        out[o++] = clip8(ss0);
        out[o++] = clip8(ss1);
        out[o++] = clip8(ss2);
      } else {
        for (let ch = 0; ch < channels; ch++) {
          let ss = HALF;
          for (let t = first, p = start + ch; t < end; t++, p += channels) ss = (ss + src[p] * kk[t]) | 0;
          out[o++] = clip8(ss);
        }
      }
    }
  }
  return out;
}

/** Vertical pass: each output byte is a weighted sum down its column (four columns at a time). */
function verticalPass(src: Uint8Array, width: number, channels: number, c: AxisCoefficients, outHeight: number, rowShift: number): Uint8Array {
  const stride = width * channels;
  const out = new Uint8Array(stride * outHeight);
  const { ksize, bounds, kk } = c;
  const blocked = stride - (stride % 4);
  for (let yy = 0; yy < outHeight; yy++) {
    const base = (bounds[yy * 2] - rowShift) * stride;
    const first = yy * ksize;
    const end = first + bounds[yy * 2 + 1];
    const o = yy * stride;
    for (let i = 0; i < blocked; i += 4) {
      let s0 = HALF;
      let s1 = HALF;
      let s2 = HALF;
      let s3 = HALF;
      for (let t = first, p = base + i; t < end; t++, p += stride) {
        const k = kk[t];
        s0 = (s0 + src[p] * k) | 0;
        s1 = (s1 + src[p + 1] * k) | 0;
        s2 = (s2 + src[p + 2] * k) | 0;
        s3 = (s3 + src[p + 3] * k) | 0;
      }
      out[o + i] = clip8(s0);
      out[o + i + 1] = clip8(s1);
      out[o + i + 2] = clip8(s2);
      out[o + i + 3] = clip8(s3);
    }
    for (let i = blocked; i < stride; i++) {
      let ss = HALF;
      for (let t = first, p = base + i; t < end; t++, p += stride) ss = (ss + src[p] * kk[t]) | 0;
      out[o + i] = clip8(ss);
    }
  }
  return out;
}

export interface Image8 {
  width: number;
  height: number;
  /** Bytes per pixel, interleaved (3 = RGB). */
  channels: number;
  data: Uint8Array;
}

/**
 * `Image.resize((outWidth, outHeight), filter)` on an 8-bit image, as Pillow computes it. RGB runs
 * the same passes in WebAssembly SIMD (pil-resize.wat, ~3x faster); `useWasm = false` runs the
 * TypeScript passes above (tests compare both with Pillow).
 */
export function pilResize(img: Image8, outWidth: number, outHeight: number, filterId: number = PIL_FILTERS.bicubic, useWasm = true): Image8 {
  const { width, height, channels, data } = img;
  if (data.length !== width * height * channels) throw new Error(`image data is ${data.length} bytes, expected ${width}x${height}x${channels} = ${width * height * channels}`);
  if (!(Number.isInteger(outWidth) && Number.isInteger(outHeight) && outWidth > 0 && outHeight > 0)) throw new Error(`resize target must be positive whole numbers, got ${outWidth}x${outHeight}`);
  const filter = pilFilter(filterId);
  const needHorizontal = outWidth !== width;
  const needVertical = outHeight !== height;
  if (!needHorizontal && !needVertical) return { width, height, channels, data: Uint8Array.from(data) };

  const vertical = axisCoefficients(height, outHeight, filter);
  // The rows the vertical pass reads: the horizontal pass skips the others.
  const firstRow = vertical.bounds[0];
  const lastRow = vertical.bounds[outHeight * 2 - 2] + vertical.bounds[outHeight * 2 - 1];
  if (channels === 3 && useWasm) {
    const horizontal = needHorizontal ? axisCoefficients(width, outWidth, filter) : undefined;
    return { width: outWidth, height: outHeight, channels, data: resizeRgbWasm(data, width, height, outWidth, outHeight, horizontal, needVertical ? vertical : undefined, firstRow, lastRow - firstRow) };
  }
  let rows = data;
  let rowShift = 0;
  if (needHorizontal) {
    const horizontal = axisCoefficients(width, outWidth, filter);
    rows = horizontalPass(data, width, needVertical ? firstRow : 0, needVertical ? lastRow - firstRow : height, channels, horizontal, outWidth);
    rowShift = needVertical ? firstRow : 0;
  }
  const rowWidth = needHorizontal ? outWidth : width;
  const out = needVertical ? verticalPass(rows, rowWidth, channels, vertical, outHeight, rowShift) : rows;
  return { width: outWidth, height: outHeight, channels, data: out };
}
