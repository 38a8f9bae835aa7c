/**
 * decoder.onnx: the Qwen2 decoder (transformers' Qwen2Model + lm_head) over `inputs_embeds` with
 * a KV cache, attention through onnxruntime's com.microsoft.GroupQueryAttention with the rotary
 * tables as graph inputs, logits of the last position only. I/O names are documented in
 * container/convert/README.md.
 */
import { GraphBuilder, float, int, type OnnxDtype } from '../onnx/graph-builder';
import { cast, concatRows, encodeAs, linear, transpose2d, type ComputeDtype } from '../onnx/layers';
import type { ResolvedConfig } from './hf-config';
import { textNames } from './tensor-names';
import type { CheckpointWeights } from './weights';

export const DECODER_OPSETS = [
  { domain: '', version: 17 },
  { domain: 'com.microsoft', version: 1 },
];

export interface DecoderGraphOptions {
  /** The lm_head weight [vocab, hidden] (embed_tokens when tied); called once, after the layers, so the largest tensor is read last. */
  lmHead: () => Float32Array;
}

export function buildDecoderGraph(modelPath: string, cfg: ResolvedConfig, w: CheckpointWeights, dtype: ComputeDtype, opts: DecoderGraphOptions): string {
  const t = cfg.text;
  const H = t.hiddenSize;
  const D = t.headDim;
  const qDim = t.numHeads * D;
  const kvDim = t.numKvHeads * D;
  const io = dtype as OnnxDtype;
  const g = new GraphBuilder('qwen2_decoder', modelPath);
  try {
    const embeds = g.input('inputs_embeds', io, [1, 'sequence_length', H]);
    const seqlensK = g.input('seqlens_k', 'int32', [1]);
    const total = g.input('total_sequence_length', 'int32', []);
    const cos = g.input('cos_cache', io, ['max_cache_length', D / 2]);
    const sin = g.input('sin_cache', io, ['max_cache_length', D / 2]);
    const pastK: string[] = [];
    const pastV: string[] = [];
    for (let i = 0; i < t.numLayers; i++) {
      pastK.push(g.input(`past_key_${i}`, io, [1, t.numKvHeads, 'past_sequence_length', D]));
      pastV.push(g.input(`past_value_${i}`, io, [1, t.numKvHeads, 'past_sequence_length', D]));
    }

    const rmsNorm = (x: string, weightName: string, label: string) => {
      const gamma = g.initializer(label, 'float32', [H], encodeAs(w.read(weightName), 'float32'));
      return g.op('SimplifiedLayerNormalization', [x, gamma], { axis: int(-1), epsilon: float(t.rmsNormEps) });
    };

    // Residual stream in fp32 (see README: Qwen2 activations can exceed fp16's range there).
    let x = cast(g, embeds, dtype, 'float32');
    for (let i = 0; i < t.numLayers; i++) {
      const L = (part: string) => textNames.layer(i, part);
      const n1 = cast(g, rmsNorm(x, L('input_layernorm.weight'), `layers.${i}.input_layernorm.weight`), 'float32', dtype);
      const qkvW = concatRows([w.read(L('self_attn.q_proj.weight')), w.read(L('self_attn.k_proj.weight')), w.read(L('self_attn.v_proj.weight'))]);
      const qkvB = concatRows([w.read(L('self_attn.q_proj.bias')), w.read(L('self_attn.k_proj.bias')), w.read(L('self_attn.v_proj.bias'))]);
      const qkv = linear(g, n1, `layers.${i}.self_attn.qkv_proj`, qkvW, qDim + 2 * kvDim, H, qkvB, dtype);
      // Packed QKV (key/value inputs empty); positions come from seqlens_k (past = seqlens_k + 1 − T).
      const [attn] = g.node(
        'GroupQueryAttention',
        [qkv, '', '', pastK[i], pastV[i], seqlensK, total, cos, sin],
        [g.fresh(`layers_${i}_attn`), `present_key_${i}`, `present_value_${i}`],
        {
          num_heads: int(t.numHeads),
          kv_num_heads: int(t.numKvHeads),
          do_rotary: int(1),
          rotary_interleaved: int(0), // Qwen2 rotates halves (rotate_half), not interleaved pairs
          scale: float(1 / Math.sqrt(D)),
        },
        'com.microsoft',
      );
      const o = linear(g, attn, `layers.${i}.self_attn.o_proj`, w.read(L('self_attn.o_proj.weight')), H, qDim, undefined, dtype);
      x = g.op('Add', [x, cast(g, o, dtype, 'float32')]);

      const n2 = cast(g, rmsNorm(x, L('post_attention_layernorm.weight'), `layers.${i}.post_attention_layernorm.weight`), 'float32', dtype);
      const I = t.intermediateSize;
      const gu = linear(g, n2, `layers.${i}.mlp.gate_up_proj`, concatRows([w.read(L('mlp.gate_proj.weight')), w.read(L('mlp.up_proj.weight'))]), 2 * I, H, undefined, dtype);
      const [gate, up] = g.node('Split', [gu, g.constInt64([I, I])], 2, { axis: int(-1) });
      const act = g.op('Mul', [g.op('Mul', [gate, g.op('Sigmoid', [gate])]), up]); // SiLU(gate)·up
      const down = linear(g, act, `layers.${i}.mlp.down_proj`, w.read(L('mlp.down_proj.weight')), H, I, undefined, dtype);
      x = g.op('Add', [x, cast(g, down, dtype, 'float32')]);
    }
    for (let i = 0; i < t.numLayers; i++) {
      g.output(`present_key_${i}`, `present_key_${i}`, io, [1, t.numKvHeads, 'total_sequence_length', D]);
      g.output(`present_value_${i}`, `present_value_${i}`, io, [1, t.numKvHeads, 'total_sequence_length', D]);
    }

    // Only the last position's logits leave the graph: the vocab projection of a whole prefill
    // chunk would cost T× the memory and time for values nobody reads.
    const last = g.op('Slice', [x, g.constInt64([-1]), g.constInt64([Number.MAX_SAFE_INTEGER]), g.constInt64([1])]);
    const normed = cast(g, rmsNorm(last, textNames.norm, 'norm.weight'), 'float32', dtype);
    const lmT = transpose2d(opts.lmHead(), t.vocabSize, H);
    const lm = g.initializer('lm_head.weight', dtype, [H, t.vocabSize], encodeAs(lmT, dtype));
    const logits = g.op('Reshape', [g.op('MatMul', [normed, lm]), g.constInt64([1, t.vocabSize])]);
    g.output(cast(g, logits, dtype, 'float32'), 'logits', 'float32', [1, t.vocabSize]);
    return g.save(DECODER_OPSETS, { 'longsight.graph': 'decoder' }, 'LLaVA-OneVision Qwen2 decoder with GroupQueryAttention KV cache');
  } catch (err) {
    g.discard();
    throw err;
  }
}
