/**
 * Tensor names of LLaVA-OneVision checkpoints. Two layouts exist:
 * - `hub`: what llava-hf published (transformers' convert_llava_onevision_weights_to_hf.py):
 *   `vision_tower.vision_model.…`, `multi_modal_projector.…`, `image_newline`,
 *   `language_model.model.…`, `language_model.lm_head.weight`;
 * - `model-prefixed`: what transformers ≥ 4.52 saves (LlavaOnevisionModel under `model.`):
 *   `model.vision_tower.…`, `model.multi_modal_projector.…`, `model.image_newline`,
 *   `model.language_model.…`, `lm_head.weight`.
 * The converter asks for hub names; `TensorNames.actual()` maps them to the checkpoint's.
 */

export type TensorLayout = 'hub' | 'model-prefixed';

const HUB_TO_PREFIXED: [string, string][] = [
  ['language_model.model.', 'model.language_model.'],
  ['language_model.lm_head.', 'lm_head.'],
  ['vision_tower.', 'model.vision_tower.'],
  ['multi_modal_projector.', 'model.multi_modal_projector.'],
  ['image_newline', 'model.image_newline'],
];

export function toLayout(hubName: string, layout: TensorLayout): string {
  if (layout === 'hub') return hubName;
  for (const [hub, prefixed] of HUB_TO_PREFIXED) if (hubName.startsWith(hub)) return prefixed + hubName.slice(hub.length);
  return hubName;
}

export function detectLayout(names: Iterable<string>): TensorLayout | undefined {
  let hub = 0;
  let prefixed = 0;
  for (const n of names) {
    if (n.startsWith('model.language_model.') || n.startsWith('model.vision_tower.') || n.startsWith('model.multi_modal_projector.') || n === 'model.image_newline') prefixed++;
    else if (n.startsWith('language_model.') || n.startsWith('vision_tower.') || n.startsWith('multi_modal_projector.') || n === 'image_newline') hub++;
  }
  if (hub === 0 && prefixed === 0) return undefined;
  return prefixed > hub ? 'model-prefixed' : 'hub';
}

/** Hub-layout names of the vision tower. */
export const visionNames = {
  patchWeight: 'vision_tower.vision_model.embeddings.patch_embedding.weight',
  patchBias: 'vision_tower.vision_model.embeddings.patch_embedding.bias',
  positionEmbedding: 'vision_tower.vision_model.embeddings.position_embedding.weight',
  layer: (i: number, part: string) => `vision_tower.vision_model.encoder.layers.${i}.${part}`,
  postLayernorm: 'vision_tower.vision_model.post_layernorm.weight',
};

export const projectorNames = {
  linear1Weight: 'multi_modal_projector.linear_1.weight',
  linear1Bias: 'multi_modal_projector.linear_1.bias',
  linear2Weight: 'multi_modal_projector.linear_2.weight',
  linear2Bias: 'multi_modal_projector.linear_2.bias',
};

export const IMAGE_NEWLINE = 'image_newline';

export const textNames = {
  embedTokens: 'language_model.model.embed_tokens.weight',
  layer: (i: number, part: string) => `language_model.model.layers.${i}.${part}`,
  norm: 'language_model.model.norm.weight',
  lmHead: 'language_model.lm_head.weight',
};

/** Every tensor a checkpoint of the given dims holds (hub names, with shapes): the generator writes these, the converter checks them. */
export interface ExpectedDims {
  vision: { hiddenSize: number; intermediateSize: number; numLayers: number; patchSize: number; numPatches: number };
  text: { hiddenSize: number; intermediateSize: number; numLayers: number; numHeads: number; numKvHeads: number; headDim: number; vocabSize: number };
  withLmHead: boolean;
}

export function expectedTensors(d: ExpectedDims): { name: string; shape: number[] }[] {
  const out: { name: string; shape: number[] }[] = [];
  const V = d.vision.hiddenSize;
  const H = d.text.hiddenSize;
  out.push({ name: visionNames.patchWeight, shape: [V, 3, d.vision.patchSize, d.vision.patchSize] });
  out.push({ name: visionNames.patchBias, shape: [V] });
  out.push({ name: visionNames.positionEmbedding, shape: [d.vision.numPatches, V] });
  for (let i = 0; i < d.vision.numLayers; i++) {
    for (const ln of ['layer_norm1', 'layer_norm2']) {
      out.push({ name: visionNames.layer(i, `${ln}.weight`), shape: [V] });
      out.push({ name: visionNames.layer(i, `${ln}.bias`), shape: [V] });
    }
    for (const p of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) {
      out.push({ name: visionNames.layer(i, `self_attn.${p}.weight`), shape: [V, V] });
      out.push({ name: visionNames.layer(i, `self_attn.${p}.bias`), shape: [V] });
    }
    out.push({ name: visionNames.layer(i, 'mlp.fc1.weight'), shape: [d.vision.intermediateSize, V] });
    out.push({ name: visionNames.layer(i, 'mlp.fc1.bias'), shape: [d.vision.intermediateSize] });
    out.push({ name: visionNames.layer(i, 'mlp.fc2.weight'), shape: [V, d.vision.intermediateSize] });
    out.push({ name: visionNames.layer(i, 'mlp.fc2.bias'), shape: [V] });
  }
  out.push({ name: visionNames.postLayernorm, shape: [V] });
  out.push({ name: 'vision_tower.vision_model.post_layernorm.bias', shape: [V] });
  out.push({ name: projectorNames.linear1Weight, shape: [H, V] });
  out.push({ name: projectorNames.linear1Bias, shape: [H] });
  out.push({ name: projectorNames.linear2Weight, shape: [H, H] });
  out.push({ name: projectorNames.linear2Bias, shape: [H] });
  out.push({ name: IMAGE_NEWLINE, shape: [H] });
  out.push({ name: textNames.embedTokens, shape: [d.text.vocabSize, H] });
  const qDim = d.text.numHeads * d.text.headDim;
  const kvDim = d.text.numKvHeads * d.text.headDim;
  for (let i = 0; i < d.text.numLayers; i++) {
    out.push({ name: textNames.layer(i, 'input_layernorm.weight'), shape: [H] });
    out.push({ name: textNames.layer(i, 'self_attn.q_proj.weight'), shape: [qDim, H] });
    out.push({ name: textNames.layer(i, 'self_attn.q_proj.bias'), shape: [qDim] });
    out.push({ name: textNames.layer(i, 'self_attn.k_proj.weight'), shape: [kvDim, H] });
    out.push({ name: textNames.layer(i, 'self_attn.k_proj.bias'), shape: [kvDim] });
    out.push({ name: textNames.layer(i, 'self_attn.v_proj.weight'), shape: [kvDim, H] });
    out.push({ name: textNames.layer(i, 'self_attn.v_proj.bias'), shape: [kvDim] });
    out.push({ name: textNames.layer(i, 'self_attn.o_proj.weight'), shape: [H, qDim] });
    out.push({ name: textNames.layer(i, 'post_attention_layernorm.weight'), shape: [H] });
    out.push({ name: textNames.layer(i, 'mlp.gate_proj.weight'), shape: [d.text.intermediateSize, H] });
    out.push({ name: textNames.layer(i, 'mlp.up_proj.weight'), shape: [d.text.intermediateSize, H] });
    out.push({ name: textNames.layer(i, 'mlp.down_proj.weight'), shape: [H, d.text.intermediateSize] });
  }
  out.push({ name: textNames.norm, shape: [H] });
  if (d.withLmHead) out.push({ name: textNames.lmHead, shape: [d.text.vocabSize, H] });
  return out;
}
