/**
 * Streaming safetensors writer: the header is computed from the tensor list up front, then each
 * tensor's values are pulled in bounded chunks and encoded to the file dtype, so a writer of a
 * multi-gigabyte file never holds more than one chunk.
 */
import * as fs from 'node:fs';
import { encodeFloat32 } from './numeric';
import { numel } from './reader';

export type WritableDtype = 'F32' | 'F16' | 'BF16';

export interface TensorSpec {
  name: string;
  dtype: WritableDtype;
  shape: number[];
}

/** Returns `count` values of the tensor starting at flat element `start`. */
export type ChunkSource = (spec: TensorSpec, start: number, count: number) => Float32Array;

const BYTES: Record<WritableDtype, number> = { F32: 4, F16: 2, BF16: 2 };
const CHUNK_ELEMENTS = 1 << 22;

export function safetensorsHeader(specs: TensorSpec[], metadata: Record<string, string> = { format: 'pt' }): Buffer {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const s of specs) {
    const len = numel(s.shape) * BYTES[s.dtype];
    header[s.name] = { dtype: s.dtype, shape: s.shape, data_offsets: [offset, offset + len] };
    offset += len;
  }
  let json = JSON.stringify(header);
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += ' '; // the format pads the header to 8 bytes
  const body = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + body.byteLength);
  out.writeBigUInt64LE(BigInt(body.byteLength), 0);
  body.copy(out, 8);
  return out;
}

export function writeSafetensors(file: string, specs: TensorSpec[], source: ChunkSource, metadata?: Record<string, string>): number {
  const fd = fs.openSync(file, 'w');
  let written = 0;
  try {
    const header = safetensorsHeader(specs, metadata);
    fs.writeSync(fd, header);
    written += header.byteLength;
    for (const s of specs) {
      const total = numel(s.shape);
      for (let start = 0; start < total; start += CHUNK_ELEMENTS) {
        const count = Math.min(CHUNK_ELEMENTS, total - start);
        const values = source(s, start, count);
        if (values.length !== count) throw new Error(`chunk source returned ${values.length} values for "${s.name}", expected ${count}`);
        const bytes = encodeFloat32(values, s.dtype);
        fs.writeSync(fd, bytes);
        written += bytes.byteLength;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return written;
}

export function tensorBytes(spec: TensorSpec): number {
  return numel(spec.shape) * BYTES[spec.dtype];
}
