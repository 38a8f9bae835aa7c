/**
 * The decoder graph with its KV cache. The graph (container/convert/decoder-graph.ts) is an ONNX
 * Loop: one run prefills a block of embeddings in chunks on top of a past cache and, if asked,
 * generates tokens inside the runtime. Three uses:
 *   - prefill: feed embeddings, fetch the grown cache (and the last position's logits);
 *   - generate: feed a question's embeddings on a past cache, fetch only token ids + log-probs
 *     (the cache never leaves the runtime during generation);
 *   - step: one host-loop decode step (feed one embedding, fetch logits and the cache) — the
 *     reference path, and what top-p sampling and per-token streaming need.
 * The rotary tables are graph inputs (cos_cache/sin_cache of com.microsoft.GroupQueryAttention),
 * built once per job, so the context-window extension is decided here at run time.
 *
 * Caches are immutable values: onnxruntime writes `present_*` into fresh tensors, so a prefix
 * cache can be shared by several questions without copying (each continuation grows its own).
 */
import * as ort from 'onnxruntime-node';
import { float32ToHalfBits, halfBitsToFloat32 } from './half';
import { runSession, type RunAccounting } from './session';

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

export interface InGraphGeneration {
  maxNewTokens: number;
  /** The loop stops after choosing any of these (the stop token is not part of the answer). */
  stopIds: readonly number[];
  /** Prefill chunk for the fed embeddings. */
  chunk: number;
  /** 0 = greedy; > 0 = Gumbel-max sampling at this temperature, seeded by `seed` and the position. */
  temperature: number;
  seed: number;
}

export interface GeneratedTokens {
  ids: number[];
  /** log p(token) under the model (temperature 1), one per id. */
  logprobs: number[];
  stoppedBy: 'stop-token' | 'max-new-tokens';
}

type FloatType = 'float32' | 'float16';

/** The graph inputs of the in-graph loop; a package converted before it lacks them. */
const LOOP_INPUTS = ['max_new_tokens', 'prefill_chunk', 'stop_ids', 'temperature', 'seed'];

export class DecoderRunner {
  readonly embedsType: FloatType;
  readonly kvType: FloatType;
  readonly ropeType: FloatType;

  constructor(
    readonly session: ort.InferenceSession,
    readonly shape: DecoderShape,
  ) {
    const missing = LOOP_INPUTS.filter((n) => !session.inputNames.includes(n));
    if (missing.length > 0) {
      throw new Error(`decoder graph has no input ${missing.map((n) => `"${n}"`).join(', ')}: the package predates the in-graph token loop; convert the checkpoint again with this version (\`longsight convert\`)`);
    }
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
   * Prefill: feeds `count` embeddings (rows of `embeds` [count, hidden], float32) on top of `cache`
   * in chunks of at most `chunk` tokens, all inside one run (the chunk bounds activation memory;
   * results equal a one-shot prefill up to summation order). Returns the last fed position's
   * logits (unless `withLogits` is false: a shared prefix needs only its cache) and the grown cache.
   */
  async prefill(embeds: Float32Array, count: number, cache: KvCache, rope: RotaryTensors, chunk: number, accounting?: RunAccounting, withLogits = true): Promise<{ logits: Float32Array; cache: KvCache }> {
    const feeds = this.feeds(embeds, count, cache, rope, { maxNewTokens: 0, stopIds: [], chunk, temperature: 0, seed: 0 });
    const fetches = [...(withLogits ? ['logits'] : []), ...this.cacheOutputNames()];
    const out = await runSession(this.session, feeds, fetches, accounting);
    const total = cache.length + count;
    const keys: ort.Tensor[] = [];
    const values: ort.Tensor[] = [];
    for (let l = 0; l < this.shape.layers; l++) {
      keys.push(out[`present_key_${l}`]);
      values.push(out[`present_value_${l}`]);
    }
    if (keys[0].dims[2] !== total) throw new Error(`decoder returned a cache of ${keys[0].dims[2]} tokens, expected ${total}`);
    return { logits: withLogits ? toFloat32(out.logits) : new Float32Array(0), cache: { length: total, keys, values } };
  }

  /** One host-loop decode step (or any block fed in one chunk): logits of the last position and the grown cache. */
  step(embeds: Float32Array, count: number, cache: KvCache, rope: RotaryTensors, accounting?: RunAccounting): Promise<{ logits: Float32Array; cache: KvCache }> {
    return this.prefill(embeds, count, cache, rope, count, accounting);
  }

  /**
   * Generation in one run: prefills `count` embeddings on `cache`, then the graph's loop chooses
   * up to maxNewTokens tokens, stopping after a stop id. Only the ids and their log-probabilities
   * come back; the cache (past and grown) stays inside the runtime.
   */
  async generate(embeds: Float32Array, count: number, cache: KvCache, rope: RotaryTensors, gen: InGraphGeneration, accounting?: RunAccounting): Promise<GeneratedTokens> {
    if (!Number.isInteger(gen.maxNewTokens) || gen.maxNewTokens < 1) throw new Error(`maxNewTokens must be a positive integer, got ${gen.maxNewTokens}`);
    const out = await runSession(this.session, this.feeds(embeds, count, cache, rope, gen), ['tokens', 'token_logprobs'], accounting);
    const ids = Array.from(out.tokens.data as BigInt64Array, Number);
    const logprobs = Array.from(out.token_logprobs.data as Float32Array);
    const stops = new Set(gen.stopIds);
    if (ids.length > 0 && stops.has(ids[ids.length - 1])) {
      ids.pop();
      logprobs.pop();
      return { ids, logprobs, stoppedBy: 'stop-token' };
    }
    return { ids, logprobs, stoppedBy: 'max-new-tokens' };
  }

  private cacheOutputNames(): string[] {
    return Array.from({ length: this.shape.layers }, (_, l) => [`present_key_${l}`, `present_value_${l}`]).flat();
  }

  private feeds(embeds: Float32Array, count: number, cache: KvCache, rope: RotaryTensors, gen: InGraphGeneration): Record<string, ort.Tensor> {
    const h = this.shape.hidden;
    if (count < 1 || embeds.length !== count * h) throw new Error(`decoder run: ${embeds.length} values is not ${count} rows of ${h}`);
    if (!Number.isInteger(gen.chunk) || gen.chunk < 1) throw new Error(`prefill chunk must be a positive integer, got ${gen.chunk}`);
    const total = cache.length + count + Math.max(0, gen.maxNewTokens - 1);
    if (total > rope.positions) throw new Error(`sequence of ${total} tokens exceeds the rotary tables (${rope.positions} positions)`);
    const data = this.embedsType === 'float16' ? float32ToHalfBits(embeds) : embeds;
    const feeds: Record<string, ort.Tensor> = {
      inputs_embeds: new ort.Tensor(this.embedsType, data, [1, count, h]),
      cos_cache: rope.cos,
      sin_cache: rope.sin,
      max_new_tokens: new ort.Tensor('int64', BigInt64Array.of(BigInt(gen.maxNewTokens)), []),
      prefill_chunk: new ort.Tensor('int64', BigInt64Array.of(BigInt(gen.chunk)), []),
      stop_ids: new ort.Tensor('int64', BigInt64Array.from(gen.stopIds, (id) => BigInt(id)), [gen.stopIds.length]),
      temperature: new ort.Tensor('float32', Float32Array.of(gen.temperature), []),
      seed: new ort.Tensor('int64', BigInt64Array.of(BigInt(gen.seed)), []),
    };
    for (let l = 0; l < this.shape.layers; l++) {
      feeds[`past_key_${l}`] = cache.keys[l];
      feeds[`past_value_${l}`] = cache.values[l];
    }
    return feeds;
  }
}

function toFloat32(t: ort.Tensor): Float32Array {
  return t.type === 'float32' ? (t.data as Float32Array) : halfBitsToFloat32(t.data as Uint16Array);
}
