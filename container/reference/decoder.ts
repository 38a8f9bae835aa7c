/**
 * Reference Qwen2 decoder, float64, whole sequence at once (no KV cache): per layer
 * RMSNorm → q/k/v projections (with bias) → RoPE (rotate_half form, cos/sin given per position)
 * → grouped-query attention by repeating each KV head over its query heads → causal softmax
 * (scale head_dim^-0.5) → o_proj (no bias) → residual; RMSNorm → SwiGLU MLP → residual;
 * final RMSNorm → lm_head.
 */
import type { RefTextConfig } from './config';
import { add, linear, map, mat, rmsNorm, silu, softmaxInPlace, type Mat } from './math';
import { asMat, type ReferenceWeights } from './weights';

/** cos/sin per position, [positions, headDim/2] row-major (the half-size table; cos = cat(c, c)). */
export interface RopeTables {
  cos: Float64Array;
  sin: Float64Array;
  half: number;
}

/** Standard RoPE tables from inverse frequencies: angle(p, i) = p * invFreq[i]. */
export function ropeTablesFromInvFreq(invFreq: ArrayLike<number>, positions: number): RopeTables {
  const half = invFreq.length;
  const cos = new Float64Array(positions * half);
  const sin = new Float64Array(positions * half);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      cos[p * half + i] = Math.cos(p * invFreq[i]);
      sin[p * half + i] = Math.sin(p * invFreq[i]);
    }
  }
  return { cos, sin, half };
}

/** Stock Qwen2 inverse frequencies: base^(-2i/d). */
export function stockInvFreq(headDim: number, base: number): Float64Array {
  const f = new Float64Array(headDim / 2);
  for (let i = 0; i < headDim / 2; i++) f[i] = 1 / base ** ((2 * i) / headDim);
  return f;
}

function applyRope(x: Mat, heads: number, headDim: number, rope: RopeTables): void {
  const half = headDim / 2;
  if (rope.half !== half) throw new Error(`reference: rope table width ${rope.half} != head_dim/2 ${half}`);
  if (rope.cos.length < x.rows * half) throw new Error('reference: rope tables shorter than the sequence');
  for (let t = 0; t < x.rows; t++) {
    for (let h = 0; h < heads; h++) {
      const o = t * x.cols + h * headDim;
      for (let i = 0; i < half; i++) {
        const c = rope.cos[t * half + i];
        const s = rope.sin[t * half + i];
        const a = x.data[o + i];
        const b = x.data[o + i + half];
        x.data[o + i] = a * c - b * s;
        x.data[o + i + half] = b * c + a * s;
      }
    }
  }
}

function attention(x: Mat, layer: number, cfg: RefTextConfig, w: ReferenceWeights, rope: RopeTables): Mat {
  const pre = `layers.${layer}.self_attn.`;
  const q = linear(x, asMat(w.text(`${pre}q_proj.weight`)), w.text(`${pre}q_proj.bias`).data);
  const k = linear(x, asMat(w.text(`${pre}k_proj.weight`)), w.text(`${pre}k_proj.bias`).data);
  const v = linear(x, asMat(w.text(`${pre}v_proj.weight`)), w.text(`${pre}v_proj.bias`).data);
  const hd = cfg.hiddenSize / cfg.heads;
  applyRope(q, cfg.heads, hd, rope);
  applyRope(k, cfg.kvHeads, hd, rope);
  const group = cfg.heads / cfg.kvHeads;
  const n = x.rows;
  const ctx = mat(n, cfg.heads * hd);
  const scores = new Float64Array(n);
  const scale = 1 / Math.sqrt(hd);
  for (let h = 0; h < cfg.heads; h++) {
    const kvh = Math.floor(h / group); // repeat_kv: query head h reads KV head h // group
    for (let i = 0; i < n; i++) {
      for (let j = 0; j <= i; j++) {
        let dot = 0;
        for (let e = 0; e < hd; e++) dot += q.data[i * q.cols + h * hd + e] * k.data[j * k.cols + kvh * hd + e];
        scores[j] = dot * scale;
      }
      softmaxInPlace(scores, i + 1);
      for (let e = 0; e < hd; e++) {
        let acc = 0;
        for (let j = 0; j <= i; j++) acc += scores[j] * v.data[j * v.cols + kvh * hd + e];
        ctx.data[i * ctx.cols + h * hd + e] = acc;
      }
    }
  }
  return linear(ctx, asMat(w.text(`${pre}o_proj.weight`)));
}

function mlp(x: Mat, layer: number, w: ReferenceWeights): Mat {
  const pre = `layers.${layer}.mlp.`;
  const gate = linear(x, asMat(w.text(`${pre}gate_proj.weight`)));
  const up = linear(x, asMat(w.text(`${pre}up_proj.weight`)));
  const act = map(gate, silu);
  for (let i = 0; i < act.data.length; i++) act.data[i] *= up.data[i];
  return linear(act, asMat(w.text(`${pre}down_proj.weight`)));
}

/** Final hidden states [T, hidden] (after the final norm). */
export function referenceDecoderHidden(embeds: Mat, cfg: RefTextConfig, w: ReferenceWeights, rope: RopeTables): Mat {
  let h = embeds;
  for (let l = 0; l < cfg.layers; l++) {
    const a = attention(rmsNorm(h, w.text(`layers.${l}.input_layernorm.weight`).data, cfg.rmsNormEps), l, cfg, w, rope);
    h = add(h, a);
    const m = mlp(rmsNorm(h, w.text(`layers.${l}.post_attention_layernorm.weight`).data, cfg.rmsNormEps), l, w);
    h = add(h, m);
  }
  return rmsNorm(h, w.text('norm.weight').data, cfg.rmsNormEps);
}

/** Logits of the last position [vocab]. */
export function referenceLastLogits(embeds: Mat, cfg: RefTextConfig, w: ReferenceWeights, rope: RopeTables): Float64Array {
  const hidden = referenceDecoderHidden(embeds, cfg, w, rope);
  const last = mat(1, hidden.cols, hidden.data.slice((hidden.rows - 1) * hidden.cols));
  return linear(last, asMat(w.lmHead())).data;
}

/** Token embeddings for ids: rows of embed_tokens. */
export function referenceEmbed(ids: number[], w: ReferenceWeights): Mat {
  const table = w.text('embed_tokens.weight');
  const [vocab, hidden] = table.shape;
  const out = mat(ids.length, hidden);
  ids.forEach((id, r) => {
    if (id < 0 || id >= vocab) throw new Error(`reference: token id ${id} outside vocabulary of ${vocab}`);
    out.data.set(table.data.subarray(id * hidden, (id + 1) * hidden), r * hidden);
  });
  return out;
}

/** Greedy continuation by full recomputation each step (no cache): the reference for generation. */
export function referenceGreedy(
  embeds: Mat,
  cfg: RefTextConfig,
  w: ReferenceWeights,
  ropeFor: (positions: number) => RopeTables,
  maxNew: number,
  stopIds: number[],
): number[] {
  const out: number[] = [];
  let seq = embeds;
  for (let step = 0; step < maxNew; step++) {
    const logits = referenceLastLogits(seq, cfg, w, ropeFor(seq.rows));
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    out.push(best);
    if (stopIds.includes(best)) break;
    const next = referenceEmbed([best], w);
    const grown = mat(seq.rows + 1, seq.cols);
    grown.data.set(seq.data);
    grown.data.set(next.data, seq.data.length);
    seq = grown;
  }
  return out;
}
