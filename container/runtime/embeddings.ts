/**
 * Token embeddings: the package stores embed_tokens as a raw little-endian [vocab, hidden] matrix
 * in the package dtype; the runtime gathers the rows it needs with positioned reads, so the
 * (up to ~1 GB) table never has to sit in memory.
 */
import * as fs from 'node:fs';
import { halfBitsToFloat32 } from './half';

export type PackageDtype = 'float32' | 'float16';

export class EmbeddingTable {
  private readonly bytesPerValue: number;

  private constructor(
    private fd: number,
    readonly vocab: number,
    readonly hidden: number,
    readonly dtype: PackageDtype,
  ) {
    this.bytesPerValue = dtype === 'float16' ? 2 : 4;
  }

  static open(file: string, vocab: number, hidden: number, dtype: PackageDtype): EmbeddingTable {
    const expected = vocab * hidden * (dtype === 'float16' ? 2 : 4);
    const size = fs.statSync(file).size;
    if (size !== expected) {
      throw new Error(`${file} holds ${size} bytes, expected ${vocab}x${hidden} ${dtype} = ${expected} (truncated or mismatched package?)`);
    }
    return new EmbeddingTable(fs.openSync(file, 'r'), vocab, hidden, dtype);
  }

  /** Rows for `ids` as float32 [ids.length, hidden]. */
  gather(ids: readonly number[]): Float32Array {
    const out = new Float32Array(ids.length * this.hidden);
    const rowBytes = this.hidden * this.bytesPerValue;
    const buf = Buffer.allocUnsafe(rowBytes);
    ids.forEach((id, r) => {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocab) throw new Error(`token id ${id} outside the vocabulary of ${this.vocab}`);
      const n = fs.readSync(this.fd, buf, 0, rowBytes, id * rowBytes);
      if (n !== rowBytes) throw new Error(`short read of embedding row ${id}`);
      const row =
        this.dtype === 'float16'
          ? halfBitsToFloat32(new Uint16Array(buf.buffer, buf.byteOffset, this.hidden))
          : new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + rowBytes));
      out.set(row, r * this.hidden);
    });
    return out;
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}

/** A raw vector file (image_newline) as float32. */
export function readVector(file: string, length: number, dtype: PackageDtype): Float32Array {
  const buf = fs.readFileSync(file);
  const bytes = length * (dtype === 'float16' ? 2 : 4);
  if (buf.byteLength !== bytes) throw new Error(`${file} holds ${buf.byteLength} bytes, expected ${length} ${dtype} values`);
  const copy = new Uint8Array(buf); // aligned copy
  return dtype === 'float16' ? halfBitsToFloat32(new Uint16Array(copy.buffer)) : new Float32Array(copy.buffer);
}
