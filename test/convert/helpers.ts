/** Shared helpers of the converter tests: temp dirs, tensors in the package dtype, decoder steps. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { ModelPackageManifest } from '../../container/model/package-manifest';
import { floatToHalf, halfToFloat } from '../../container/safetensors/numeric';

export function makeTmp(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `longsight-${prefix}-`));
}

export function toTensor(dtype: 'fp32' | 'fp16' | 'float32' | 'float16', values: Float32Array, dims: number[]): ort.Tensor {
  if (dtype === 'fp32' || dtype === 'float32') return new ort.Tensor('float32', values, dims);
  return new ort.Tensor('float16', Uint16Array.from(values, (v) => floatToHalf(v)), dims);
}

export function fromTensor(t: ort.Tensor): Float32Array {
  if (t.type === 'float16') return Float32Array.from(t.data as Uint16Array, halfToFloat);
  return t.data as Float32Array;
}

const imul = Math.imul; // a global `Math` lookup per element is slow inside Jest's vm context

export function seededRandom(seed: number, n: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 4294967296 - 0.5) * 2 * scale;
  }
  return out;
}

/** Stock RoPE tables [rows, headDim/2] (the runtime's own rotary code is tested elsewhere). */
export function stockRope(headDim: number, ropeTheta: number, rows: number): { cos: Float32Array; sin: Float32Array } {
  const half = headDim / 2;
  const cos = new Float32Array(rows * half);
  const sin = new Float32Array(rows * half);
  for (let p = 0; p < rows; p++) {
    for (let j = 0; j < half; j++) {
      const th = p * Math.pow(ropeTheta, (-2 * j) / headDim);
      cos[p * half + j] = Math.cos(th);
      sin[p * half + j] = Math.sin(th);
    }
  }
  return { cos, sin };
}

export interface Cache {
  length: number;
  tensors: Record<string, ort.Tensor>;
}

/** Feeds embeds [T, hidden] on top of `cache`; returns last-position logits and the grown cache. */
export async function decoderStep(session: ort.InferenceSession, m: ModelPackageManifest, embeds: Float32Array, cache?: Cache): Promise<{ logits: Float32Array; cache: Cache; outputs: ort.InferenceSession.OnnxValueMapType }> {
  const H = m.text.hiddenSize;
  const T = embeds.length / H;
  const P = cache?.length ?? 0;
  const rows = 64;
  const { cos, sin } = stockRope(m.text.headDim, m.text.ropeTheta, rows);
  const feeds: Record<string, ort.Tensor> = {
    inputs_embeds: toTensor(m.dtype, embeds, [1, T, H]),
    // Prefill only (no generated token), the whole block as one chunk of the graph's loop.
    max_new_tokens: new ort.Tensor('int64', BigInt64Array.of(0n), []),
    prefill_chunk: new ort.Tensor('int64', BigInt64Array.of(BigInt(T)), []),
    stop_ids: new ort.Tensor('int64', new BigInt64Array(0), [0]),
    temperature: new ort.Tensor('float32', Float32Array.of(0), []),
    seed: new ort.Tensor('int64', BigInt64Array.of(0n), []),
    cos_cache: toTensor(m.dtype, cos, [rows, m.text.headDim / 2]),
    sin_cache: toTensor(m.dtype, sin, [rows, m.text.headDim / 2]),
  };
  for (let i = 0; i < m.text.numLayers; i++) {
    for (const kind of ['key', 'value']) {
      feeds[`past_${kind}_${i}`] = cache?.tensors[`present_${kind}_${i}`] ?? toTensor(m.dtype, new Float32Array(0), [1, m.text.numKvHeads, 0, m.text.headDim]);
    }
  }
  const out = await session.run(feeds);
  const tensors: Record<string, ort.Tensor> = {};
  for (const [k, v] of Object.entries(out)) if (k.startsWith('present_')) tensors[k] = v as ort.Tensor;
  return { logits: out.logits.data as Float32Array, cache: { length: P + T, tensors }, outputs: out };
}

/** max |a − b| / max |b| (the runtime tests' helper). */
export { maxRelativeError as relErr } from '../runtime/fixtures';
