/** safetensors reader/writer and the fp16/bf16 conversions they rely on. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bf16BytesToFloat32, bf16ToFloat, float32ToBf16Bytes, float32ToHalfBytes, floatToBf16, floatToHalf, halfBytesToFloat32, halfToFloat } from '../../container/safetensors/numeric';
import { SafetensorsFile } from '../../container/safetensors/reader';
import { writeSafetensors } from '../../container/safetensors/writer';
import { makeTmp } from './helpers';

let tmp: string;
beforeAll(() => {
  tmp = makeTmp('safetensors');
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('binary16', () => {
  it('encodes known values exactly', () => {
    expect(floatToHalf(1)).toBe(0x3c00);
    expect(floatToHalf(-2)).toBe(0xc000);
    expect(floatToHalf(65504)).toBe(0x7bff);
    expect(floatToHalf(1e6)).toBe(0x7c00); // overflow → inf
    expect(floatToHalf(5.960464477539063e-8)).toBe(0x0001); // smallest subnormal
    expect(floatToHalf(0.1)).toBe(0x2e66);
    expect(floatToHalf(Number.NaN) & 0x7c00).toBe(0x7c00);
    expect(halfToFloat(0x3555)).toBeCloseTo(0.333251953125, 12);
    expect(halfToFloat(0x0001)).toBeCloseTo(5.960464477539063e-8, 20);
    expect(halfToFloat(0xfc00)).toBe(-Infinity);
  });

  it('round-trips every finite half exactly and rounds ties to even', () => {
    const mismatches: number[] = [];
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00) continue;
      if (floatToHalf(halfToFloat(h)) !== h) mismatches.push(h);
    }
    expect(mismatches).toEqual([]);
    // 1 + 2^-11 lies exactly between 1 and 1 + 2^-10: ties go to the even mantissa (1).
    expect(floatToHalf(1 + 2 ** -11)).toBe(0x3c00);
    expect(floatToHalf(1 + 3 * 2 ** -11)).toBe(0x3c02);
  });
});

describe('bulk conversions agree with the scalar ones', () => {
  const specials = [0, -0, 1, -1, 65504, 65520, 65519.99, 1e-8, 6.1e-5, 6.103515625e-5, 5.96e-8, 2.98e-8, 1e30, -1e30, Infinity, -Infinity, NaN, 0.1, 1 / 3];
  const values = Float32Array.from([...specials, ...Array.from({ length: 20000 }, (_, i) => Math.sin(i * 12.9898) * 10 ** ((i % 14) - 8))]);

  it('float32 → fp16 bytes', () => {
    const bulk = float32ToHalfBytes(values);
    const bad: number[] = [];
    values.forEach((v, i) => {
      if (bulk.readUInt16LE(2 * i) !== floatToHalf(v)) bad.push(v);
    });
    expect(bad).toEqual([]);
  });

  it('fp16 bytes → float32 for every bit pattern, and bf16 both ways', () => {
    const all = Buffer.alloc(65536 * 2);
    for (let h = 0; h < 65536; h++) all.writeUInt16LE(h, 2 * h);
    const decoded = halfBytesToFloat32(all);
    const bad: number[] = [];
    for (let h = 0; h < 65536; h++) if (!Object.is(decoded[h], halfToFloat(h))) bad.push(h);
    expect(bad).toEqual([]);
    const bf = float32ToBf16Bytes(values);
    const back = bf16BytesToFloat32(bf);
    const badBf: number[] = [];
    values.forEach((v, i) => {
      if (!Object.is(back[i], bf16ToFloat(floatToBf16(v)))) badBf.push(v);
    });
    expect(badBf).toEqual([]);
  });

  it('decodes from an odd byte offset', () => {
    const buf = Buffer.alloc(5);
    buf.writeUInt16LE(0x3c00, 1);
    buf.writeUInt16LE(0xc000, 3);
    expect(Array.from(halfBytesToFloat32(buf.subarray(1)))).toEqual([1, -2]);
  });
});

describe('bfloat16', () => {
  it('keeps the float32 exponent and rounds the mantissa to nearest even', () => {
    expect(floatToBf16(1)).toBe(0x3f80);
    expect(bf16ToFloat(0x3f80)).toBe(1);
    expect(bf16ToFloat(floatToBf16(3.140625))).toBe(3.140625);
    expect(floatToBf16(1 + 2 ** -8)).toBe(0x3f80); // tie → even
    expect(floatToBf16(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(Math.abs(bf16ToFloat(floatToBf16(1e38)) / 1e38 - 1)).toBeLessThan(2 ** -8);
  });
});

it('writes a header the reader parses (8-byte aligned, metadata kept) and tensors in F32/F16/BF16', () => {
  const file = path.join(tmp, 'a.safetensors');
  const values: Record<string, Float32Array> = {
    a: Float32Array.from([1, -2.5, 3.25, 0.1]),
    b: Float32Array.from([0.5, 1.5, -8, 1024, 3, 7]),
    c: Float32Array.from([1, 2, 3]),
  };
  writeSafetensors(
    file,
    [
      { name: 'a', dtype: 'F32', shape: [2, 2] },
      { name: 'b', dtype: 'F16', shape: [3, 2] },
      { name: 'c', dtype: 'BF16', shape: [3] },
    ],
    (s, start, count) => values[s.name].subarray(start, start + count),
    { format: 'pt' },
  );
  const buf = fs.readFileSync(file);
  expect((8 + Number(buf.readBigUInt64LE(0))) % 8).toBe(0);
  const f = SafetensorsFile.open(file);
  try {
    expect(f.metadata).toEqual({ format: 'pt' });
    expect(f.info('b')).toMatchObject({ dtype: 'F16', shape: [3, 2], byteLength: 12 });
    expect(Array.from(f.readFloat32('a'))).toEqual(Array.from(values.a));
    expect(Array.from(f.readFloat32('b'))).toEqual(Array.from(values.b));
    expect(Array.from(f.readFloat32('c'))).toEqual([1, 2, 3]);
    expect(() => f.info('zzz')).toThrow(/no tensor named "zzz"/);
  } finally {
    f.close();
  }
});

it('rejects a header whose offsets disagree with the dtype and shape', () => {
  const file = path.join(tmp, 'bad.safetensors');
  const header = Buffer.from(JSON.stringify({ w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 12] } }));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.byteLength));
  fs.writeFileSync(file, Buffer.concat([len, header, Buffer.alloc(16)]));
  expect(() => SafetensorsFile.open(file)).toThrow(/tensor "w" spans 12 bytes but F32\[2,2\] needs 16/);
});

it('rejects a file shorter than the length prefix', () => {
  const file = path.join(tmp, 'short.safetensors');
  fs.writeFileSync(file, Buffer.from([1, 2, 3]));
  expect(() => SafetensorsFile.open(file)).toThrow(/too short to be safetensors/);
});
