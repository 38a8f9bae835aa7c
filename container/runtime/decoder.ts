/**
 * The decoder graph with its KV cache. One call feeds a chunk of input embeddings on top of the
 * cache and returns the last position's logits and the grown cache. The rotary tables are graph
 * inputs (cos_cache/sin_cache of com.microsoft.GroupQueryAttention), built once per job for the
 * whole sequence, so the context-window extension is decided here at run time.
 *
 * Caches are immutable values: onnxruntime writes `present_*` into fresh tensors, so a prefix
 * cache can be shared by several questions without copying (each continuation grows its own).
 */
import * as ort from 'onnxruntime-node';
import { float32ToHalfBits, halfBitsToFloat32 } from './half';
import { runSession } from './session';

export interface DecoderShape {
  layers: number;
  kvHeads: number;
  headDim: number;
  hidden: number;
  vocab: number;
}

export interface KvCache {
  /** Tokens held. */
  length: number;
  keys: ort.Tensor[];
  values: ort.Tensor[];
}

export interface RotaryTensors {
  cos: ort.Tensor;
  sin: ort.Tensor;
  /** Positions covered by the tables (the sequence may not grow beyond). */
  positions: number;
}

type FloatType = 'float32' | 'float16';

export class DecoderRunner {
  readonly embedsType: FloatType;
  readonly kvType: FloatType;
  readonly ropeType: FloatType;

  constructor(
    readonly session: ort.InferenceSession,
    readonly shape: DecoderShape,
  ) {
    const typeOf = (name: string): FloatType => {
      const meta = session.inputMetadata.find((m) => m.name === name);
      if (!meta) throw new Error(`decoder graph has no input "${name}" (inputs: ${session.inputNames.join(', ')})`);
      const t = meta.isTensor ? meta.type : undefined;
      if (t !== 'float32' && t !== 'float16') throw new Error(`decoder input "${name}" has type ${String(t)}, expected float32 or float16`);
      return t;
    };
    this.embedsType = typeOf('inputs_embeds');
    this.kvType = typeOf('past_key_0');
    this.ropeType = typeOf('cos_cache');
  }

  emptyCache(): KvCache {
    const dims = [1, this.shape.kvHeads, 0, this.shape.headDim];
    const empty = () => new ort.Tensor(this.kvType, this.kvType === 'float16' ? new Uint16Array(0) : new Float32Array(0), dims);
    return {
      length: 0,
      keys: Array.from({ length: this.shape.layers }, empty),
      values: Array.from({ length: this.shape.layers }, empty),
    };
  }

  /** Rotary tables as graph inputs; `cos`/`sin` are [positions, headDim/2] in float32 or fp16 bits. */
  rotaryTensors(cos: Float32Array | Uint16Array, sin: Float32Array | Uint16Array, positions: number): RotaryTensors {
    const half = this.shape.headDim / 2;
    if (cos.length !== positions * half || sin.length !== positions * half) {
      throw new Error(`rotary tables hold ${cos.length}/${sin.length} values, expected ${positions}x${half}`);
    }
    const expectHalf = this.ropeType === 'float16';
    if ((cos instanceof Uint16Array) !== expectHalf) {
      throw new Error(`the decoder takes ${this.ropeType} rotary tables but was given ${cos instanceof Uint16Array ? 'float16' : 'float32'}`);
    }
    return {
      cos: new ort.Tensor(this.ropeType, cos, [positions, half]),
      sin: new ort.Tensor(this.ropeType, sin, [positions, half]),
      positions,
    };
  }

  /**
   * Feeds `count` embeddings (rows of `embeds` [count, hidden], float32) on top of `cache`.
   * Returns the logits of the last fed position and the grown cache.
   */
  async step(embeds: Float32Array, count: number, cache: KvCache, rope: RotaryTensors): Promise<{ logits: Float32Array; cache: KvCache }> {
    const h = this.shape.hidden;
    if (count < 1 || embeds.length !== count * h) throw new Error(`decoder step: ${embeds.length} values is not ${count} rows of ${h}`);
    const total = cache.length + count;
    if (total > rope.positions) throw new Error(`sequence of ${total} tokens exceeds the rotary tables (${rope.positions} positions)`);
    const data = this.embedsType === 'float16' ? float32ToHalfBits(embeds) : embeds;
    const feeds: Record<string, ort.Tensor> = {
      inputs_embeds: new ort.Tensor(this.embedsType, data, [1, count, h]),
      // GroupQueryAttention: seqlens_k is the total length minus one (per batch row); the new
      // tokens' positions are derived from it, so RoPE continues where the cache ends.
      seqlens_k: new ort.Tensor('int32', Int32Array.of(total - 1), [1]),
      total_sequence_length: new ort.Tensor('int32', Int32Array.of(total), []),
      cos_cache: rope.cos,
      sin_cache: rope.sin,
    };
    for (let l = 0; l < this.shape.layers; l++) {
      feeds[`past_key_${l}`] = cache.keys[l];
      feeds[`past_value_${l}`] = cache.values[l];
    }
    const out = await runSession(this.session, feeds);
    const logitsTensor = out.logits as ort.Tensor;
    const logits = logitsTensor.type === 'float32' ? (logitsTensor.data as Float32Array) : halfBitsToFloat32(logitsTensor.data as Uint16Array);
    const keys: ort.Tensor[] = [];
    const values: ort.Tensor[] = [];
    for (let l = 0; l < this.shape.layers; l++) {
      keys.push(out[`present_key_${l}`] as ort.Tensor);
      values.push(out[`present_value_${l}`] as ort.Tensor);
    }
    if (keys[0].dims[2] !== total) throw new Error(`decoder returned a cache of ${keys[0].dims[2]} tokens, expected ${total}`);
    return { logits: logits.length === this.shape.vocab ? logits : logits.subarray(logits.length - this.shape.vocab), cache: { length: total, keys, values } };
  }

  /**
   * Chunked prefill: feeds `count` rows in chunks of at most `chunk` tokens. The chunk bounds the
   * activation memory (attention scores and MLP intermediates scale with it); results equal a
   * one-shot prefill up to floating-point summation order.
   */
  async prefill(
    embeds: Float32Array,
    count: number,
    cache: KvCache,
    rope: RotaryTensors,
    chunk: number,
    onChunk?: (done: number, total: number) => void,
  ): Promise<{ logits: Float32Array; cache: KvCache }> {
    if (!Number.isInteger(chunk) || chunk < 1) throw new Error(`prefill chunk must be a positive integer, got ${chunk}`);
    const h = this.shape.hidden;
    let state = cache;
    let logits: Float32Array | undefined;
    for (let start = 0; start < count; start += chunk) {
      const n = Math.min(chunk, count - start);
      const r = await this.step(embeds.subarray(start * h, (start + n) * h), n, state, rope);
      state = r.cache;
      logits = r.logits;
      onChunk?.(start + n, count);
    }
    if (!logits) throw new Error('prefill of zero tokens');
    return { logits, cache: state };
  }
}

