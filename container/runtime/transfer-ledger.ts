/**
 * The transfer ledger: bytes that cross into and out of `session.run` for one job, by kind.
 *
 * onnxruntime-node has no CUDA IO binding: every input and output of a run is a host tensor, so on
 * the CUDA EP each of these bytes is a PCIe copy (host→device for feeds, device→host for fetches).
 * Counting them is how the GPU cost of a job shows on a CPU machine. The engine records what it
 * really fed and fetched (tensor byte lengths); the planner (container/plan/transfers.ts) replays
 * the same runs from shapes through this same class, so the two can be compared.
 *
 * `perGeneratedToken` is the marginal cost of one more generated token: the bytes whose count grows
 * with each token, beyond what crosses once per job or per question (past cache, question
 * embeddings, rotary tables). With the in-graph loop only the token ids and their log-probabilities
 * grow (12 bytes a token); with the host loop every step feeds the whole cache and fetches it back.
 */
import { TRANSFER_KINDS, type TransferBytesRecord } from '../../lib/contracts/items';

export { TRANSFER_KINDS };
export type TransferKind = (typeof TRANSFER_KINDS)[number];
/** { total, perGeneratedToken, byKind }: the job item's `transferBytes` (lib/contracts). */
export type TransferBytes = TransferBytesRecord;

/**
 * What a run's bytes are per: 'job' and 'question' runs cross once (their token outputs still
 * scale with tokens); a 'token' run is one host-loop decode step, all of whose bytes scale.
 */
export type RunScope = 'job' | 'question' | 'token';

/** The ledger kind of a graph input or output, by its name in the package's graphs (container/convert/README.md). */
export function transferKindOf(name: string): TransferKind {
  if (name === 'pixel_values') return 'pixels';
  if (name === 'image_tokens') return 'visionOut';
  if (name === 'inputs_embeds') return 'embeddings';
  if (name.startsWith('past_')) return 'kvIn';
  if (name.startsWith('present_')) return 'kvOut';
  if (name === 'logits') return 'logits';
  if (name === 'tokens') return 'tokenIds';
  if (name === 'token_logprobs') return 'logprobs';
  if (name === 'cos_cache' || name === 'sin_cache') return 'rotary';
  return 'control'; // max_new_tokens, prefill_chunk, stop_ids, temperature, seed, pool_weights
}

/** Outputs whose size is proportional to the tokens generated, whatever the run. */
const PER_TOKEN_KINDS: ReadonlySet<TransferKind> = new Set(['tokenIds', 'logprobs']);

export class TransferLedger {
  private readonly bytes = Object.fromEntries(TRANSFER_KINDS.map((k) => [k, 0])) as Record<TransferKind, number>;
  private tokenScaledBytes = 0;
  private tokens = 0;

  /** Adds `bytes` of `name` (a graph input or output) crossing in a run of `scope`. */
  add(name: string, bytes: number, scope: RunScope): void {
    if (!Number.isFinite(bytes) || bytes < 0) throw new RangeError(`transfer of ${bytes} bytes for ${name}`);
    const kind = transferKindOf(name);
    this.bytes[kind] += bytes;
    if (scope === 'token' || PER_TOKEN_KINDS.has(kind)) this.tokenScaledBytes += bytes;
  }

  /** Records every tensor of a run's feeds and fetched outputs. */
  addRun(feeds: Record<string, { readonly data: unknown }>, outputs: Record<string, { readonly data: unknown }>, scope: RunScope): void {
    for (const [name, t] of [...Object.entries(feeds), ...Object.entries(outputs)]) {
      if (!ArrayBuffer.isView(t.data)) throw new TypeError(`tensor ${name} holds no typed array: cannot count its bytes`);
      this.add(name, t.data.byteLength, scope);
    }
  }

  /** Counts generated tokens (the denominator of perGeneratedToken). */
  addGeneratedTokens(n: number): void {
    this.tokens += n;
  }

  get generatedTokens(): number {
    return this.tokens;
  }

  summary(): TransferBytes {
    const byKind = { ...this.bytes };
    const total = TRANSFER_KINDS.reduce((a, k) => a + byKind[k], 0);
    return { total, perGeneratedToken: this.tokens > 0 ? Math.round((this.tokenScaledBytes / this.tokens) * 100) / 100 : 0, byKind };
  }
}
