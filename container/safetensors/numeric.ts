/**
 * Half-precision conversions (IEEE binary16 and bfloat16) between raw little-endian bytes and
 * float32. Node has no Float16Array in v20, so these are the few bit-twiddling loops we need.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** binary16 bits → float32 value (exact: every fp16 value is representable in fp32). */
export function halfToFloat(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) {
    // zero or subnormal: mant * 2^-24
    const v = mant * 5.960464477539063e-8;
    return sign ? -v : v;
  }
  if (exp === 0x1f) {
    u32[0] = sign | 0x7f800000 | (mant << 13);
    return f32[0];
  }
  u32[0] = sign | ((exp + 112) << 23) | (mant << 13);
  return f32[0];
}

/** float32 value → binary16 bits, round to nearest even (what numpy/torch `.half()` do). */
export function floatToHalf(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf / nan
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow → inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow → ±0
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++; // may carry into exponent: still correct
  return sign | half;
}

export function bf16ToFloat(b: number): number {
  u32[0] = (b & 0xffff) << 16;
  return f32[0];
}

/** float32 → bfloat16 bits, round to nearest even (torch's `.bfloat16()`). */
export function floatToBf16(value: number): number {
  f32[0] = value;
  const x = u32[0];
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff)) return ((x >>> 16) | 0x40) & 0xffff; // nan
  const rounding = 0x7fff + ((x >>> 16) & 1);
  return ((x + rounding) >>> 16) & 0xffff;
}

/** A 16-bit view of little-endian bytes (copied when the offset is odd). */
function u16View(bytes: Uint8Array): Uint16Array {
  if (bytes.byteOffset % 2 === 0) return new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 1);
  const copy = new Uint8Array(bytes.byteLength); // (Buffer#slice would be a view, not a copy)
  copy.set(bytes);
  return new Uint16Array(copy.buffer, 0, bytes.byteLength >>> 1);
}

let halfTable: Float32Array | undefined;

/** Decodes little-endian fp16 bytes into float32 (through a 65,536-entry table: one load per value). */
export function halfBytesToFloat32(bytes: Uint8Array): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = halfToFloat(h);
  }
  const table = halfTable;
  const src = u16View(bytes);
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = table[src[i]];
  return out;
}

export function bf16BytesToFloat32(bytes: Uint8Array): Float32Array {
  const src = u16View(bytes);
  const out = new Float32Array(src.length);
  const outBits = new Uint32Array(out.buffer);
  for (let i = 0; i < src.length; i++) outBits[i] = src[i] << 16;
  return out;
}

/** float32 array → little-endian fp16 bytes (round to nearest even; same rule as floatToHalf, inlined for speed). */
export function float32ToHalfBytes(values: Float32Array): Buffer {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = Buffer.allocUnsafe(values.length * 2);
  const dst = new Uint16Array(out.buffer, out.byteOffset, values.length);
  for (let i = 0; i < bits.length; i++) {
    const x = bits[i];
    const exp = (x >>> 23) & 0xff;
    // Normal range of fp16 (exponents 113…142): round the mantissa in place.
    if (exp > 112 && exp < 143) {
      const sign = (x >>> 16) & 0x8000;
      let half = ((exp - 112) << 10) | ((x & 0x7fffff) >>> 13);
      const rem = x & 0x1fff;
      if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++;
      dst[i] = sign | half;
    } else {
      dst[i] = floatToHalf(values[i]); // zero, subnormal, overflow, inf, nan
    }
  }
  return out;
}

export function float32ToBf16Bytes(values: Float32Array): Buffer {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = Buffer.allocUnsafe(values.length * 2);
  const dst = new Uint16Array(out.buffer, out.byteOffset, values.length);
  for (let i = 0; i < bits.length; i++) {
    const x = bits[i];
    // Same rule as floatToBf16, inlined: NaN stays NaN, everything else rounds to nearest even.
    dst[i] = (x & 0x7f800000) === 0x7f800000 && x & 0x7fffff ? ((x >>> 16) | 0x40) & 0xffff : ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
  }
  return out;
}

/**
 * float32 array → its little-endian bytes, as a view sharing the array's memory (no copy: the
 * converter's largest tensors are gigabytes). The host is little-endian on every platform we run.
 */
export function float32ToBytes(values: Float32Array): Buffer {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
}

/** float32 values → little-endian bytes of a safetensors float dtype (F32 is a view, no copy). */
export function encodeFloat32(values: Float32Array, dtype: 'F32' | 'F16' | 'BF16'): Buffer {
  if (dtype === 'F32') return float32ToBytes(values);
  if (dtype === 'F16') return float32ToHalfBytes(values);
  return float32ToBf16Bytes(values);
}
