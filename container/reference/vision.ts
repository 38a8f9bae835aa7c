/**
 * Reference SigLIP vision tower + LLaVA-OneVision projector, float64, one frame at a time:
 * patch conv (stride = kernel = patch) → + learned position embedding → pre-LN encoder layers
 * (softmax attention without mask, GELU-tanh MLP) → hidden_states[vision_feature_layer]
 * (no post-layernorm) → projector linear_1 → exact GELU → linear_2.
 */
import type { RefVisionConfig } from './config';
import { add, geluErf, geluTanh, layerNorm, linear, map, mat, softmaxInPlace, type Mat } from './math';
import { asMat, type ReferenceWeights } from './weights';

/** pixels: one frame [3, S, S] (already normalised), returns [patches, visionHidden]. */
export function siglipEmbeddings(pixels: Float64Array, cfg: RefVisionConfig, w: ReferenceWeights): Mat {
  const s = cfg.imageSize;
  const p = cfg.patchSize;
  const grid = Math.floor(s / p);
  const d = cfg.hiddenSize;
  if (pixels.length !== 3 * s * s) throw new Error(`reference: frame has ${pixels.length} values, expected 3x${s}x${s}`);
  const kernel = w.vision('embeddings.patch_embedding.weight').data; // [d, 3, p, p]
  const bias = w.vision('embeddings.patch_embedding.bias').data;
  const pos = w.vision('embeddings.position_embedding.weight').data; // [grid*grid, d]
  const out = mat(grid * grid, d);
  for (let gy = 0; gy < grid; gy++) {
    for (let gx = 0; gx < grid; gx++) {
      const token = gy * grid + gx;
      for (let o = 0; o < d; o++) {
        let acc = bias[o];
        for (let c = 0; c < 3; c++) {
          for (let ky = 0; ky < p; ky++) {
            const rowBase = c * s * s + (gy * p + ky) * s + gx * p;
            const kBase = ((o * 3 + c) * p + ky) * p;
            for (let kx = 0; kx < p; kx++) acc += pixels[rowBase + kx] * kernel[kBase + kx];
          }
        }
        out.data[token * d + o] = acc + pos[token * d + o];
      }
    }
  }
  return out;
}

/** Multi-head self-attention without mask (SiglipAttention), scale head_dim^-0.5. */
function selfAttention(x: Mat, heads: number, prefix: string, w: ReferenceWeights): Mat {
  const q = linear(x, asMat(w.vision(`${prefix}q_proj.weight`)), w.vision(`${prefix}q_proj.bias`).data);
  const k = linear(x, asMat(w.vision(`${prefix}k_proj.weight`)), w.vision(`${prefix}k_proj.bias`).data);
  const v = linear(x, asMat(w.vision(`${prefix}v_proj.weight`)), w.vision(`${prefix}v_proj.bias`).data);
  const n = x.rows;
  const d = x.cols;
  const hd = d / heads;
  const scale = 1 / Math.sqrt(hd);
  const ctx = mat(n, d);
  const scores = new Float64Array(n);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let dot = 0;
        for (let e = 0; e < hd; e++) dot += q.data[i * d + h * hd + e] * k.data[j * d + h * hd + e];
        scores[j] = dot * scale;
      }
      softmaxInPlace(scores, n);
      for (let e = 0; e < hd; e++) {
        let acc = 0;
        for (let j = 0; j < n; j++) acc += scores[j] * v.data[j * d + h * hd + e];
        ctx.data[i * d + h * hd + e] = acc;
      }
    }
  }
  return linear(ctx, asMat(w.vision(`${prefix}out_proj.weight`)), w.vision(`${prefix}out_proj.bias`).data);
}

function encoderLayer(x: Mat, index: number, cfg: RefVisionConfig, w: ReferenceWeights): Mat {
  const pre = `encoder.layers.${index}.`;
  const ln1 = layerNorm(x, w.vision(`${pre}layer_norm1.weight`).data, w.vision(`${pre}layer_norm1.bias`).data, cfg.layerNormEps);
  const h = add(x, selfAttention(ln1, cfg.heads, `${pre}self_attn.`, w));
  const ln2 = layerNorm(h, w.vision(`${pre}layer_norm2.weight`).data, w.vision(`${pre}layer_norm2.bias`).data, cfg.layerNormEps);
  const fc1 = linear(ln2, asMat(w.vision(`${pre}mlp.fc1.weight`)), w.vision(`${pre}mlp.fc1.bias`).data);
  const fc2 = linear(map(fc1, geluTanh), asMat(w.vision(`${pre}mlp.fc2.weight`)), w.vision(`${pre}mlp.fc2.bias`).data);
  return add(h, fc2);
}

/** The vision tower's selected hidden state for one frame: [patches, visionHidden]. */
export function referenceVisionFeatures(pixels: Float64Array, cfg: RefVisionConfig, w: ReferenceWeights): Mat {
  // hidden_states[0] is the embedding output, hidden_states[i] the output of layer i.
  const total = cfg.layers + 1;
  const index = cfg.featureLayer < 0 ? total + cfg.featureLayer : cfg.featureLayer;
  if (index < 0 || index >= total) throw new Error(`reference: vision_feature_layer ${cfg.featureLayer} out of range`);
  let h = siglipEmbeddings(pixels, cfg, w);
  for (let l = 0; l < index; l++) h = encoderLayer(h, l, cfg, w);
  return h;
}

/** LlavaOnevisionMultiModalProjector: linear_1 → GELU (exact) → linear_2. */
export function referenceProjector(features: Mat, w: ReferenceWeights): Mat {
  const bias = (name: string) => {
    try {
      return w.projector(name).data;
    } catch {
      return undefined; // multimodal_projector_bias = false
    }
  };
  const h = linear(features, asMat(w.projector('linear_1.weight')), bias('linear_1.bias'));
  return linear(map(h, geluErf), asMat(w.projector('linear_2.weight')), bias('linear_2.bias'));
}

/** One frame [3,S,S] → projected features [patches, textHidden]. */
export function referenceImageFeatures(pixels: Float64Array, cfg: RefVisionConfig, w: ReferenceWeights): Mat {
  return referenceProjector(referenceVisionFeatures(pixels, cfg, w), w);
}
