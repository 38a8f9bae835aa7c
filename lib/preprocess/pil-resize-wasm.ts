/**
 * The RGB passes of pil-resize.ts in WebAssembly SIMD (pil-resize.wat): the same integer
 * arithmetic, about 3x faster, so the exact resize costs a few ms per 1080p frame instead of
 * tens. One instance per thread, its memory grown to the largest frame seen.
 */
import type { AxisCoefficients } from './pil-resize';
import { PIL_RESIZE_WASM } from './pil-resize-wasm-bytes';

// Node has WebAssembly; this project's TypeScript libs (no DOM) do not declare it: the part used here.
declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace WebAssembly {
    class Module {
      constructor(bytes: Uint8Array);
    }
    class Instance {
      constructor(module: Module, imports: object);
      readonly exports: unknown;
    }
    class Memory {
      readonly buffer: ArrayBuffer;
      grow(pages: number): number;
    }
  }
}

interface Exports {
  memory: WebAssembly.Memory;
  hpass(src: number, inStride: number, rows: number, out: number, outW: number, bounds: number, kk: number, ksize: number): void;
  vpass(src: number, stride: number, out: number, outH: number, bounds: number, kk: number, ksize: number, shift: number): void;
}

let instance: Exports | undefined;

function wasm(): Exports {
  instance ??= new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(PIL_RESIZE_WASM, 'base64')), {}).exports as unknown as Exports;
  return instance;
}

/** Lays out blocks of the given sizes (16-byte aligned, 16 bytes of slack each) and grows memory to fit. */
function layout(ex: Exports, sizes: number[]): number[] {
  const at: number[] = [];
  let end = 0;
  for (const s of sizes) {
    at.push(end);
    end += Math.ceil((s + 16) / 16) * 16;
  }
  const pages = Math.ceil(end / 65536) - ex.memory.buffer.byteLength / 65536;
  if (pages > 0) ex.memory.grow(pages);
  return at;
}

/**
 * Both passes (or one, when the other axis keeps its size) on packed RGB. `rows`: the input rows
 * the vertical pass reads, [firstRow, firstRow + rowCount).
 */
export function resizeRgbWasm(
  data: Uint8Array,
  width: number,
  height: number,
  outWidth: number,
  outHeight: number,
  horizontal: AxisCoefficients | undefined,
  vertical: AxisCoefficients | undefined,
  firstRow: number,
  rowCount: number,
): Uint8Array {
  const ex = wasm();
  const midWidth = horizontal ? outWidth : width;
  const midRows = horizontal ? (vertical ? rowCount : height) : height;
  const [src, mid, out, hb, hk, vb, vk] = layout(ex, [
    data.length,
    horizontal && vertical ? midWidth * midRows * 3 : 0,
    outWidth * outHeight * 3,
    horizontal ? horizontal.bounds.byteLength : 0,
    horizontal ? horizontal.kk.byteLength : 0,
    vertical ? vertical.bounds.byteLength : 0,
    vertical ? vertical.kk.byteLength : 0,
  ]);
  const mem = new Uint8Array(ex.memory.buffer);
  mem.set(data, src);
  const put = (c: AxisCoefficients, b: number, k: number) => {
    mem.set(new Uint8Array(c.bounds.buffer, c.bounds.byteOffset, c.bounds.byteLength), b);
    mem.set(new Uint8Array(c.kk.buffer, c.kk.byteOffset, c.kk.byteLength), k);
  };
  if (horizontal) {
    put(horizontal, hb, hk);
    const from = vertical ? firstRow : 0;
    ex.hpass(src + from * width * 3, width * 3, midRows, vertical ? mid : out, outWidth, hb, hk, horizontal.ksize);
  }
  if (vertical) {
    put(vertical, vb, vk);
    ex.vpass(horizontal ? mid : src, midWidth * 3, out, outHeight, vb, vk, vertical.ksize, horizontal ? firstRow : 0);
  }
  return mem.slice(out, out + outWidth * outHeight * 3);
}
