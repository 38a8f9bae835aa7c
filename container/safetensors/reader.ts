/**
 * safetensors reader: an 8-byte little-endian header length, a JSON header
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, __metadata__?: {...} }`, then the tensor
 * bytes (offsets relative to the end of the header). Tensors are read one at a time with
 * positioned reads, so memory stays bounded by the largest tensor, never the file.
 *
 * Standalone on purpose: the float64 reference forward (container/reference/) loads weights
 * through this module and nothing else of the converter.
 */
import * as fs from 'node:fs';
import { bf16BytesToFloat32, halfBytesToFloat32 } from './numeric';

export const SAFETENSORS_DTYPE_BYTES = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
} as const;
export type SafetensorsDtype = keyof typeof SAFETENSORS_DTYPE_BYTES;

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Absolute byte offset of the tensor's data in the file. */
  byteOffset: number;
  byteLength: number;
  file: string;
}

export class SafetensorsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SafetensorsError';
  }
}

/** Upper bound on the JSON header (the format's own limit is 100 MB). */
const MAX_HEADER_BYTES = 100_000_000;

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Parses and validates a header; `dataBytes` is the file size minus the header. */
export function parseSafetensorsHeader(file: string, headerJson: string, dataStart: number, dataBytes: number): { tensors: Map<string, TensorInfo>; metadata: Record<string, string> } {
  let header: unknown;
  try {
    header = JSON.parse(headerJson);
  } catch (err) {
    throw new SafetensorsError(`${file}: the safetensors header is not valid JSON (${(err as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new SafetensorsError(`${file}: the safetensors header is not a JSON object`);
  }
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = (entry ?? {}) as Record<string, string>;
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== 'object' || e === null) throw new SafetensorsError(`${file}: tensor "${name}" has no header entry object`);
    if (typeof e.dtype !== 'string' || !(e.dtype in SAFETENSORS_DTYPE_BYTES)) {
      throw new SafetensorsError(`${file}: tensor "${name}" has unsupported dtype ${JSON.stringify(e.dtype)}`);
    }
    const dtype = e.dtype as SafetensorsDtype;
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new SafetensorsError(`${file}: tensor "${name}" has an invalid shape ${JSON.stringify(e.shape)}`);
    }
    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isInteger(d) && d >= 0) || offs[1] < offs[0]) {
      throw new SafetensorsError(`${file}: tensor "${name}" has invalid data_offsets ${JSON.stringify(offs)}`);
    }
    const shape = e.shape as number[];
    const expected = numel(shape) * SAFETENSORS_DTYPE_BYTES[dtype];
    if (offs[1] - offs[0] !== expected) {
      throw new SafetensorsError(`${file}: tensor "${name}" spans ${offs[1] - offs[0]} bytes but ${dtype}${JSON.stringify(shape)} needs ${expected}`);
    }
    if (offs[1] > dataBytes) {
      throw new SafetensorsError(`${file}: tensor "${name}" ends at byte ${offs[1]} of the data section but the file holds only ${dataBytes} data bytes (truncated file?)`);
    }
    tensors.set(name, { name, dtype, shape, byteOffset: dataStart + offs[0], byteLength: expected, file });
  }
  return { tensors, metadata };
}

export class SafetensorsFile {
  private constructor(
    readonly path: string,
    private fd: number,
    readonly tensors: Map<string, TensorInfo>,
    readonly metadata: Record<string, string>,
    readonly fileSize: number,
  ) {}

  static open(path: string): SafetensorsFile {
    const fd = fs.openSync(path, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      if (size < 8) throw new SafetensorsError(`${path}: file of ${size} bytes is too short to be safetensors (truncated?)`);
      const lenBuf = Buffer.alloc(8);
      fs.readSync(fd, lenBuf, 0, 8, 0);
      const headerLen = Number(lenBuf.readBigUInt64LE(0));
      if (headerLen > MAX_HEADER_BYTES || 8 + headerLen > size) {
        throw new SafetensorsError(`${path}: header length ${headerLen} does not fit the file of ${size} bytes (bad header or truncated file)`);
      }
      const headerBuf = Buffer.alloc(headerLen);
      readFully(fd, headerBuf, 8);
      const { tensors, metadata } = parseSafetensorsHeader(path, headerBuf.toString('utf8'), 8 + headerLen, size - 8 - headerLen);
      return new SafetensorsFile(path, fd, tensors, metadata, size);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new SafetensorsError(`${this.path}: no tensor named "${name}"`);
    return t;
  }

  /** Raw little-endian bytes of one tensor. */
  readBytes(name: string): Buffer {
    const t = this.info(name);
    const buf = Buffer.allocUnsafe(t.byteLength);
    readFully(this.fd, buf, t.byteOffset);
    return buf;
  }

  /** One tensor as float32 (F32 as is, F16/BF16 widened exactly, F64 narrowed). */
  readFloat32(name: string): Float32Array {
    const t = this.info(name);
    if (t.dtype === 'F32') {
      // Straight into the result: no second copy of what may be a gigabyte-sized tensor.
      const out = new Float32Array(t.byteLength / 4);
      readFully(this.fd, Buffer.from(out.buffer), t.byteOffset);
      return out;
    }
    return bytesToFloat32(this.readBytes(name), t.dtype, `${this.path}: tensor "${name}"`);
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}

export function bytesToFloat32(bytes: Buffer, dtype: SafetensorsDtype, what: string): Float32Array {
  switch (dtype) {
    case 'F32': {
      const out = new Float32Array(bytes.byteLength / 4);
      new Uint8Array(out.buffer).set(bytes);
      return out;
    }
    case 'F16':
      return halfBytesToFloat32(bytes);
    case 'BF16':
      return bf16BytesToFloat32(bytes);
    case 'F64': {
      const f64 = new Float64Array(bytes.byteLength / 8);
      new Uint8Array(f64.buffer).set(bytes);
      return Float32Array.from(f64);
    }
    default:
      throw new SafetensorsError(`${what} has dtype ${dtype}, expected a floating-point tensor (F32, F16 or BF16)`);
  }
}

function readFully(fd: number, buf: Buffer, position: number): void {
  let done = 0;
  while (done < buf.byteLength) {
    const chunk = Math.min(buf.byteLength - done, 1 << 30);
    const n = fs.readSync(fd, buf, done, chunk, position + done);
    if (n === 0) throw new SafetensorsError(`unexpected end of file at byte ${position + done} (truncated file?)`);
    done += n;
  }
}
