/**
 * The host loop: autoregressive generation on top of a prefilled KV cache, one decoder run per
 * token: pick the next token from the last logits (greedy or seeded top-p sampling), stop on any
 * stop id (eos, <|im_end|>) or after max_new_tokens, feed the chosen token's embedding back. The
 * reference path for the in-graph loop (DecoderRunner.generate), and what top-p and per-token
 * streaming need; each step moves the whole KV cache across the session boundary twice.
 */
import type { DecoderRunner, KvCache, RotaryTensors } from './decoder';
import type { RunAccounting } from './session';
import type { EmbeddingTable } from './embeddings';
import type { Sampler } from './sampler';

export interface GenerateOptions {
  maxNewTokens: number;
  stopIds: ReadonlySet<number>;
  sampler: Sampler;
  /** Called after each generated token with all ids so far. */
  onToken?: (ids: readonly number[]) => void;
  /** Called with each step's logits before the choice (diagnostics: scores, logprobs, tests). */
  onLogits?: (logits: Float32Array, step: number) => void;
  /** Checked between decode steps. */
  signal?: AbortSignal;
  /** Where each step's crossing bytes are counted (the whole cache, in and out, every step). */
  accounting?: RunAccounting;
}

export interface GenerateResult {
  ids: number[];
  stoppedBy: 'stop-token' | 'max-new-tokens';
  cache: KvCache;
}

export async function generate(
  decoder: DecoderRunner,
  embeddings: EmbeddingTable,
  start: { logits: Float32Array; cache: KvCache },
  rope: RotaryTensors,
  opts: GenerateOptions,
): Promise<GenerateResult> {
  const ids: number[] = [];
  let { logits, cache } = start;
  while (ids.length < opts.maxNewTokens) {
    opts.signal?.throwIfAborted();
    opts.onLogits?.(logits, ids.length);
    const next = opts.sampler(logits);
    if (opts.stopIds.has(next)) return { ids, stoppedBy: 'stop-token', cache };
    ids.push(next);
    opts.onToken?.(ids);
    if (ids.length >= opts.maxNewTokens) break;
    ({ logits, cache } = await decoder.step(embeddings.gather([next]), 1, cache, rope, opts.accounting));
  }
  return { ids, stoppedBy: 'max-new-tokens', cache };
}
