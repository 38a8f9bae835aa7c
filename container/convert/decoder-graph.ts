/**
 * decoder.onnx: the Qwen2 decoder (transformers' Qwen2Model + lm_head) over `inputs_embeds` with
 * a KV cache, attention through onnxruntime's com.microsoft.GroupQueryAttention with the rotary
 * tables as graph inputs — and the token loop itself, so that one `session.run` answers a question.
 *
 * The graph is one ONNX `Loop` around a decoder step. Iteration k feeds
 *   - while k < nChunks: rows [k·C, (k+1)·C) of `inputs_embeds` (chunked prefill, C = prefill_chunk),
 *   - after that: the embedding of the token chosen by iteration k − 1 (generation),
 * on top of the KV cache, which is loop-carried state (it grows every iteration and never leaves
 * the runtime inside a run). Each iteration picks a token from its last position's logits (greedy
 * ArgMax, or Gumbel-max sampling at `temperature` with a counter-based hash of (seed, position), so
 * a sampled answer is reproducible whatever ran before it) and stops on any of `stop_ids` once
 * generation has begun. Trip count: nChunks + max(max_new_tokens − 1, 0).
 *
 * One graph serves every use, so the decoder weights are loaded once:
 *   prefill (max_new_tokens = 0): fetch `present_*` (and `logits`);
 *   answer (max_new_tokens = n): fetch `tokens` (+ `token_logprobs`) only — the cache stays inside;
 *   host-loop reference step (max_new_tokens = 0, one row): fetch `logits` and `present_*`.
 * I/O names and shapes are documented in container/convert/README.md.
 */
import { GraphBuilder, float, graph, int, type GraphScope, type OnnxDtype } from '../onnx/graph-builder';
import { cast, concatRows, encodeAs, linear, type ComputeDtype } from '../onnx/layers';
import type { ResolvedConfig } from './hf-config';
import { textNames } from './tensor-names';
import type { CheckpointWeights } from './weights';

export const DECODER_OPSETS = [
  { domain: '', version: 17 },
  { domain: 'com.microsoft', version: 1 },
];

/** Greatest prime below 2³¹ (Mersenne): the modulus of the sampling hash, so squares fit in int64. */
const HASH_PRIME = 2147483647;

export interface DecoderGraphOptions {
  /** The embed_tokens weight [vocab, hidden]: the loop feeds each chosen token's row back. */
  embedTokens: () => Float32Array;
  /**
   * The lm_head weight [vocab, hidden]; undefined when the checkpoint ties it to embed_tokens (then
   * one initializer serves both). Called once, after the layers, so the largest tensors are read last.
   */
  lmHead: (() => Float32Array) | undefined;
}

/** Values of the main graph the loop body reads by name (ONNX outer scope). */
interface OuterScope {
  inputsEmbeds: string;
  cos: string;
  sin: string;
  chunk: string;
  nChunks: string;
  stopIds: string;
  temperature: string;
  seed: string;
  embedTable: string;
}

export function buildDecoderGraph(modelPath: string, cfg: ResolvedConfig, w: CheckpointWeights, dtype: ComputeDtype, opts: DecoderGraphOptions): string {
  const t = cfg.text;
  const io = dtype as OnnxDtype;
  const g = new GraphBuilder('qwen2_decoder', modelPath);
  try {
    // ---- inputs
    const inputsEmbeds = g.input('inputs_embeds', io, [1, 'sequence_length', t.hiddenSize]);
    const pastK: string[] = [];
    const pastV: string[] = [];
    for (let i = 0; i < t.numLayers; i++) {
      pastK.push(g.input(`past_key_${i}`, io, [1, t.numKvHeads, 'past_sequence_length', t.headDim]));
      pastV.push(g.input(`past_value_${i}`, io, [1, t.numKvHeads, 'past_sequence_length', t.headDim]));
    }
    const cos = g.input('cos_cache', io, ['max_cache_length', t.headDim / 2]);
    const sin = g.input('sin_cache', io, ['max_cache_length', t.headDim / 2]);
    const maxNewTokens = g.input('max_new_tokens', 'int64', []);
    const prefillChunk = g.input('prefill_chunk', 'int64', []);
    const stopIds = g.input('stop_ids', 'int64', ['num_stop_ids']);
    const temperature = g.input('temperature', 'float32', []);
    const seed = g.input('seed', 'int64', []);

    // ---- trip count: nChunks prefill iterations, then one per further new token
    const one = g.constInt64([1]);
    const seqLen = g.op('Shape', [inputsEmbeds], { start: int(1), end: int(2) });
    const chunk = g.op('Max', [g.op('Reshape', [prefillChunk, one]), one]);
    const nChunks = g.op('Div', [g.op('Sub', [g.op('Add', [seqLen, chunk]), one]), chunk]);
    const extra = g.op('Max', [g.op('Sub', [g.op('Reshape', [maxNewTokens, one]), one]), g.constInt64([0])]);
    const tripCount = g.op('Squeeze', [g.op('Add', [nChunks, extra]), g.constInt64([0])]);

    // ---- weights the loop body reads: the token embedding table, and lm_head [vocab, hidden] (tied: the same)
    const embedTable = g.initializer('embed_tokens.weight', io, [t.vocabSize, t.hiddenSize], encodeAs(opts.embedTokens(), dtype));
    const outer: OuterScope = {
      inputsEmbeds,
      cos,
      sin,
      chunk,
      nChunks: g.op('Squeeze', [nChunks, g.constInt64([0])]),
      // A sentinel −1 keeps the list non-empty (no token has it), so "any equal" is a plain ReduceMax.
      stopIds: g.op('Concat', [stopIds, g.constInt64([-1])], { axis: int(0) }),
      temperature,
      seed,
      embedTable,
    };
    const body = buildLoopBody(g, cfg, w, dtype, outer, () => {
      if (!opts.lmHead) return embedTable;
      return g.initializer('lm_head.weight', io, [t.vocabSize, t.hiddenSize], encodeAs(opts.lmHead(), dtype));
    });

    // ---- the loop
    const firstRow = g.op('Slice', [inputsEmbeds, g.constInt64([0]), one, one]);
    const logits0 = g.op('Expand', [g.constFloat32([0], [1, 1]), g.constInt64([1, t.vocabSize])]);
    const cond0 = g.initializer(g.fresh('true'), 'bool', [], Uint8Array.of(1));
    const layerOuts = Array.from({ length: t.numLayers }, (_, i) => [`present_key_${i}`, `present_value_${i}`]);
    const loopOut = g.node(
      'Loop',
      [tripCount, cond0, firstRow, ...pastK, ...pastV, logits0],
      [g.fresh('last_embed'), ...layerOuts.map((p) => p[0]), ...layerOuts.map((p) => p[1]), 'logits', g.fresh('scan_tokens'), g.fresh('scan_logprobs')],
      { body: graph(body) },
    );
    const [scanTokens, scanLogprobs] = loopOut.slice(-2);

    // ---- outputs: the tokens of the generation iterations (from the last prefill chunk on), at most max_new_tokens
    const from = g.op('Sub', [nChunks, one]);
    const to = g.op('Add', [from, g.op('Reshape', [maxNewTokens, one])]);
    const generated = (scan: string) => g.op('Slice', [g.op('Reshape', [scan, g.constInt64([-1])]), from, to, g.constInt64([0])]);
    g.output(generated(scanTokens), 'tokens', 'int64', ['generated_tokens']);
    g.output(generated(scanLogprobs), 'token_logprobs', 'float32', ['generated_tokens']);
    g.output('logits', 'logits', 'float32', [1, t.vocabSize]);
    for (let i = 0; i < t.numLayers; i++) {
      g.output(`present_key_${i}`, `present_key_${i}`, io, [1, t.numKvHeads, 'total_sequence_length', t.headDim]);
      g.output(`present_value_${i}`, `present_value_${i}`, io, [1, t.numKvHeads, 'total_sequence_length', t.headDim]);
    }
    return g.save(DECODER_OPSETS, { 'longsight.graph': 'decoder', 'longsight.decode_loop': 'onnx-loop' }, 'LLaVA-OneVision Qwen2 decoder: chunked prefill and token generation in one ONNX Loop, GroupQueryAttention KV cache');
  } catch (err) {
    g.discard();
    throw err;
  }
}

/**
 * One decoder step as the Loop body: (iter, cond, previous token's embedding, past KV…, logits)
 * → (cond, this token's embedding, present KV…, logits; scan: token, its log-probability).
 */
function buildLoopBody(g: GraphScope, cfg: ResolvedConfig, w: CheckpointWeights, dtype: ComputeDtype, outer: OuterScope, lmHead: () => string) {
  const t = cfg.text;
  const io = dtype as OnnxDtype;
  return g.subgraph('decoder_step', (b) => {
    const iter = b.input(b.fresh('iter'), 'int64', []);
    b.input(b.fresh('cond_in'), 'bool', []);
    const previous = b.input(b.fresh('next_embed_in'), io, [1, 1, t.hiddenSize]);
    const pastK = Array.from({ length: t.numLayers }, (_, i) => b.input(b.fresh(`loop_past_key_${i}`), io, [1, t.numKvHeads, 'past', t.headDim]));
    const pastV = Array.from({ length: t.numLayers }, (_, i) => b.input(b.fresh(`loop_past_value_${i}`), io, [1, t.numKvHeads, 'past', t.headDim]));
    b.input(b.fresh('logits_in'), 'float32', [1, t.vocabSize]);

    const x = stepInput(b, iter, previous, outer, io);
    const { hidden, presentK, presentV } = qwen2Layers(b, cfg, w, dtype, x, pastK, pastV, outer);
    const logits = lastPositionLogits(b, cfg, w, dtype, hidden, lmHead());
    const position = b.op('Add', [b.op('Shape', [pastK[0]], { start: int(2), end: int(3) }), b.op('Shape', [x], { start: int(1), end: int(2) })]);
    const token = chooseToken(b, logits, position, t.vocabSize, outer);

    const logprob = b.op('Reshape', [b.op('GatherElements', [b.op('LogSoftmax', [logits], { axis: int(1) }), b.op('Reshape', [token, b.constInt64([1, 1])])], { axis: int(1) }), b.constInt64([1])]);
    const nextEmbed = b.op('Reshape', [b.op('Gather', [outer.embedTable, token], { axis: int(0) }), b.constInt64([1, 1, t.hiddenSize])]);
    const isStop = b.op('Cast', [b.op('ReduceMax', [b.op('Cast', [b.op('Equal', [token, outer.stopIds])], { to: int(6) })], { keepdims: int(0) })], { to: int(9) });
    // Tokens chosen inside the prompt (at the end of a non-final prefill chunk) never stop the loop.
    const stillPrefilling = b.op('Less', [b.op('Add', [iter, b.constInt64([1], [])]), outer.nChunks]);
    const cond = b.op('Or', [stillPrefilling, b.op('Not', [isStop])]);

    b.output(cond, b.fresh('cond_out'), 'bool', []);
    b.output(nextEmbed, b.fresh('next_embed_out'), io, [1, 1, t.hiddenSize]);
    presentK.forEach((k, i) => b.output(k, b.fresh(`loop_present_key_${i}`), io, [1, t.numKvHeads, 'total', t.headDim]));
    presentV.forEach((v, i) => b.output(v, b.fresh(`loop_present_value_${i}`), io, [1, t.numKvHeads, 'total', t.headDim]));
    b.output(logits, b.fresh('logits_out'), 'float32', [1, t.vocabSize]);
    b.output(token, b.fresh('token'), 'int64', [1]);
    b.output(logprob, b.fresh('logprob'), 'float32', [1]);
  });
}

/** The rows this iteration feeds: the k-th prefill chunk of inputs_embeds, or the previous token's embedding. */
function stepInput(b: GraphScope, iter: string, previous: string, outer: OuterScope, io: OnnxDtype): string {
  const chunkRows = b.subgraph('prefill_chunk_rows', (s) => {
    const start = s.op('Mul', [s.op('Reshape', [iter, s.constInt64([1])]), outer.chunk]);
    const rows = s.op('Slice', [outer.inputsEmbeds, start, s.op('Add', [start, outer.chunk]), s.constInt64([1])]);
    s.output(rows, s.fresh('chunk_rows'), io, null);
  });
  const previousToken = b.subgraph('previous_token_row', (s) => {
    s.output(s.op('Identity', [previous]), s.fresh('token_row'), io, null);
  });
  return b.op('If', [b.op('Less', [iter, outer.nChunks])], { then_branch: graph(chunkRows), else_branch: graph(previousToken) });
}

/** The Qwen2 layers on x [1, T, hidden] over the past cache; returns the fp32 residual stream and the grown cache. */
function qwen2Layers(b: GraphScope, cfg: ResolvedConfig, w: CheckpointWeights, dtype: ComputeDtype, x: string, pastK: string[], pastV: string[], outer: OuterScope) {
  const t = cfg.text;
  const H = t.hiddenSize;
  const D = t.headDim;
  const qDim = t.numHeads * D;
  const kvDim = t.numKvHeads * D;
  // GroupQueryAttention: seqlens_k = total − 1 and total_sequence_length = past + T; positions of the
  // new rows follow from them, so RoPE continues where the cache ends.
  const total = b.op('Cast', [b.op('Add', [b.op('Shape', [pastK[0]], { start: int(2), end: int(3) }), b.op('Shape', [x], { start: int(1), end: int(2) })])], { to: int(6) });
  const seqlensK = b.op('Sub', [total, b.initializer(b.fresh('one_i32'), 'int32', [1], Uint8Array.from(Buffer.from(Int32Array.of(1).buffer)))]);
  const totalScalar = b.op('Squeeze', [total, b.constInt64([0])]);

  const rmsNorm = (v: string, weightName: string, label: string) => {
    const gamma = b.initializer(label, 'float32', [H], encodeAs(w.read(weightName), 'float32'));
    return b.op('SimplifiedLayerNormalization', [v, gamma], { axis: int(-1), epsilon: float(t.rmsNormEps) });
  };

  // Residual stream in fp32 (see README: Qwen2 activations can exceed fp16's range there).
  let h = cast(b, x, dtype, 'float32');
  const presentK: string[] = [];
  const presentV: string[] = [];
  for (let i = 0; i < t.numLayers; i++) {
    const L = (part: string) => textNames.layer(i, part);
    const n1 = cast(b, rmsNorm(h, L('input_layernorm.weight'), `layers.${i}.input_layernorm.weight`), 'float32', dtype);
    const qkvW = concatRows([w.read(L('self_attn.q_proj.weight')), w.read(L('self_attn.k_proj.weight')), w.read(L('self_attn.v_proj.weight'))]);
    const qkvB = concatRows([w.read(L('self_attn.q_proj.bias')), w.read(L('self_attn.k_proj.bias')), w.read(L('self_attn.v_proj.bias'))]);
    const qkv = linear(b, n1, `layers.${i}.self_attn.qkv_proj`, qkvW, qDim + 2 * kvDim, H, qkvB, dtype);
    // Packed QKV (key/value inputs empty).
    const [attn, k, v] = b.node(
      'GroupQueryAttention',
      [qkv, '', '', pastK[i], pastV[i], seqlensK, totalScalar, outer.cos, outer.sin],
      3,
      {
        num_heads: int(t.numHeads),
        kv_num_heads: int(t.numKvHeads),
        do_rotary: int(1),
        rotary_interleaved: int(0), // Qwen2 rotates halves (rotate_half), not interleaved pairs
        scale: float(1 / Math.sqrt(D)),
      },
      'com.microsoft',
    );
    presentK.push(k);
    presentV.push(v);
    const o = linear(b, attn, `layers.${i}.self_attn.o_proj`, w.read(L('self_attn.o_proj.weight')), H, qDim, undefined, dtype);
    h = b.op('Add', [h, cast(b, o, dtype, 'float32')]);

    const n2 = cast(b, rmsNorm(h, L('post_attention_layernorm.weight'), `layers.${i}.post_attention_layernorm.weight`), 'float32', dtype);
    const I = t.intermediateSize;
    const gu = linear(b, n2, `layers.${i}.mlp.gate_up_proj`, concatRows([w.read(L('mlp.gate_proj.weight')), w.read(L('mlp.up_proj.weight'))]), 2 * I, H, undefined, dtype);
    const [gate, up] = b.node('Split', [gu, b.constInt64([I, I])], 2, { axis: int(-1) });
    const act = b.op('Mul', [b.op('Mul', [gate, b.op('Sigmoid', [gate])]), up]); // SiLU(gate)·up
    const down = linear(b, act, `layers.${i}.mlp.down_proj`, w.read(L('mlp.down_proj.weight')), H, I, undefined, dtype);
    h = b.op('Add', [h, cast(b, down, dtype, 'float32')]);
  }
  return { hidden: h, presentK, presentV };
}

/**
 * Final RMSNorm and lm_head on the last position only: the vocab projection of a whole prefill
 * chunk would cost T× the memory and time for values nobody reads. lm_head is stored [vocab, hidden]
 * (Gemm transB), so a tied checkpoint keeps one matrix for it and for the embedding rows.
 */
function lastPositionLogits(b: GraphScope, cfg: ResolvedConfig, w: CheckpointWeights, dtype: ComputeDtype, hidden: string, lmHead: string): string {
  const t = cfg.text;
  const last = b.op('Slice', [hidden, b.constInt64([-1]), b.constInt64([Number.MAX_SAFE_INTEGER]), b.constInt64([1])]);
  const gamma = b.initializer('norm.weight', 'float32', [t.hiddenSize], encodeAs(w.read(textNames.norm), 'float32'));
  const normed = cast(b, b.op('SimplifiedLayerNormalization', [last, gamma], { axis: int(-1), epsilon: float(t.rmsNormEps) }), 'float32', dtype);
  const logits = b.op('Gemm', [b.op('Reshape', [normed, b.constInt64([1, t.hiddenSize])]), lmHead], { transB: int(1) });
  return cast(b, logits, dtype, 'float32');
}

/**
 * The next token: ArgMax of the logits (lowest id on ties, as the host sampler), or with
 * temperature > 0 Gumbel-max — ArgMax(logits/T + g), g = −log(−log u) — which draws exactly from
 * softmax(logits/T). u comes from a counter-based hash of (seed, absolute position, token id) in
 * int64 arithmetic (x ← x² + c mod p rounds), so it depends on nothing but those three.
 */
function chooseToken(b: GraphScope, logits: string, position: string, vocab: number, outer: OuterScope): string {
  const greedy = b.subgraph('greedy', (s) => {
    s.output(s.op('ArgMax', [logits], { axis: int(1), keepdims: int(0) }), s.fresh('greedy_token'), 'int64', [1]);
  });
  const sampled = b.subgraph('gumbel_max', (s) => {
    const p = s.constInt64([HASH_PRIME], []);
    const counter = s.op('Add', [s.op('Mul', [s.op('Mod', [outer.seed, p]), s.constInt64([1000003], [])]), s.op('Squeeze', [position, s.constInt64([0])])]);
    let x = s.op('Mod', [
      s.op('Add', [s.op('Mul', [s.op('Range', [s.constInt64([0], []), s.constInt64([vocab], []), s.constInt64([1], [])]), s.constInt64([2654435761], [])]), s.op('Mul', [s.op('Mod', [counter, p]), s.constInt64([69069], [])])]),
      p,
    ]);
    for (const c of [1013904223, 12345, 40503]) x = s.op('Mod', [s.op('Add', [s.op('Mul', [x, x]), s.constInt64([c], [])]), p]);
    const u = s.op('Clip', [s.op('Div', [s.op('Add', [s.op('Cast', [x], { to: int(1) }), s.constFloat32([0.5], [])]), s.constFloat32([HASH_PRIME], [])]), s.constFloat32([1e-7], []), s.constFloat32([1 - 1e-7], [])]);
    const gumbel = s.op('Neg', [s.op('Log', [s.op('Neg', [s.op('Log', [u])])])]);
    const scores = s.op('Add', [s.op('Div', [logits, outer.temperature]), s.op('Reshape', [gumbel, s.constInt64([1, vocab])])]);
    s.output(s.op('ArgMax', [scores], { axis: int(1), keepdims: int(0) }), s.fresh('sampled_token'), 'int64', [1]);
  });
  return b.op('If', [b.op('Greater', [outer.temperature, b.constFloat32([0], [])])], { then_branch: graph(sampled), else_branch: graph(greedy) });
}
