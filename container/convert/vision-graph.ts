/**
 * vision.onnx: SigLIP vision tower (as transformers' SiglipVisionTransformer) up to the last used
 * encoder layer, without post_layernorm, followed by LLaVA's multi-modal projector
 * (Linear → GELU → Linear), then LLaVA-OneVision's per-frame bilinear pooling of the G×G feature
 * grid, so only pooled tokens leave the runtime: pixel_values [N,3,S,S] + pool_weights [s, G] →
 * image_tokens [N, s², textHidden], float32 at both ends. In fp16 packages the residual stream and
 * LayerNorms stay fp32; matmuls, attention and the MLP run in fp16; pooling runs in fp32.
 *
 * Pooling is `F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False)` written as two
 * small MatMuls, Y = W·X·Wᵀ per channel, with the interpolation matrix W [s, G] computed on the host
 * the PyTorch way (container/model/bilinear-resize.ts: half-pixel source index clamped at 0, edge
 * clamping). ONNX `Resize` (linear, half_pixel) differs from PyTorch's by up to 4.7e-6 for strides 2,
 * 4 and 6; the MatMuls are exact to fp32 rounding. The side s is the input's, so one graph serves
 * every stride; the runtime batches frames by stride (progressive pooling: s_h for the first frame
 * of each group, s_l for the rest), and stride 1 is W = I.
 */
import { GraphBuilder, float, int, ints, type GraphScope } from '../onnx/graph-builder';
import { cast, concatRows, encodeAs, linear, type ComputeDtype } from '../onnx/layers';
import type { ResolvedConfig } from './hf-config';
import { projectorNames, visionNames } from './tensor-names';
import type { CheckpointWeights } from './weights';

export const VISION_OPSETS = [
  { domain: '', version: 17 },
  { domain: 'com.microsoft', version: 1 },
];

function f32Bytes(v: Float32Array): Buffer {
  return encodeAs(v, 'float32');
}

export function buildVisionGraph(modelPath: string, cfg: ResolvedConfig, w: CheckpointWeights, dtype: ComputeDtype): string {
  const v = cfg.vision;
  const V = v.hiddenSize;
  const P = v.patchSize;
  const G = v.gridSize;
  const heads = v.numHeads;
  const headDim = V / heads;
  const textHidden = cfg.text.hiddenSize;
  const g = new GraphBuilder('llava_onevision_vision', modelPath);
  try {
    const pixels = g.input('pixel_values', 'float32', ['num_frames', 3, v.imageSize, v.imageSize]);
    const poolWeights = g.input('pool_weights', 'float32', ['pooled_side', G]);

    // Patch embedding: Conv with kernel = stride = patch size, "valid" padding (27×27 of 384/14).
    const patchW = g.initializer('patch_embedding.weight', dtype, [V, 3, P, P], encodeAs(w.read(visionNames.patchWeight), dtype));
    const patchB = g.initializer('patch_embedding.bias', dtype, [V], encodeAs(w.read(visionNames.patchBias), dtype));
    const conv = g.op('Conv', [cast(g, pixels, 'float32', dtype), patchW, patchB], { kernel_shape: ints([P, P]), strides: ints([P, P]) });
    const flat = g.op('Reshape', [conv, g.constInt64([0, V, G * G])]);
    const tokens = g.op('Transpose', [flat], { perm: ints([0, 2, 1]) });
    const pos = g.initializer('position_embedding.weight', 'float32', [G * G, V], f32Bytes(w.read(visionNames.positionEmbedding)));
    let h = g.op('Add', [cast(g, tokens, dtype, 'float32'), pos]);

    const headsShape = g.constInt64([0, 0, heads, headDim]);
    const mergeShape = g.constInt64([0, 0, V]);
    const lnEps = v.layerNormEps;
    const layerNorm = (x: string, i: number, which: 'layer_norm1' | 'layer_norm2') => {
      const gamma = g.initializer(`layers.${i}.${which}.weight`, 'float32', [V], f32Bytes(w.read(visionNames.layer(i, `${which}.weight`))));
      const beta = g.initializer(`layers.${i}.${which}.bias`, 'float32', [V], f32Bytes(w.read(visionNames.layer(i, `${which}.bias`))));
      return g.op('LayerNormalization', [x, gamma, beta], { axis: int(-1), epsilon: float(lnEps) });
    };

    for (let i = 0; i < v.layersUsed; i++) {
      // --- self-attention block (pre-LN)
      const n1 = cast(g, layerNorm(h, i, 'layer_norm1'), 'float32', dtype);
      // q, k, v fused into one MatMul; the 1/sqrt(headDim) softmax scale is folded into q's weight and bias.
      const scale = 1 / Math.sqrt(headDim);
      const qW = w.read(visionNames.layer(i, 'self_attn.q_proj.weight')).map((x) => x * scale);
      const qB = w.read(visionNames.layer(i, 'self_attn.q_proj.bias')).map((x) => x * scale);
      const kW = w.read(visionNames.layer(i, 'self_attn.k_proj.weight'));
      const kB = w.read(visionNames.layer(i, 'self_attn.k_proj.bias'));
      const vW = w.read(visionNames.layer(i, 'self_attn.v_proj.weight'));
      const vB = w.read(visionNames.layer(i, 'self_attn.v_proj.bias'));
      const qkv = linear(g, n1, `layers.${i}.self_attn.qkv_proj`, concatRows([qW, kW, vW]), 3 * V, V, concatRows([qB, kB, vB]), dtype);
      const [q, k, vv] = g.node('Split', [qkv, g.constInt64([V, V, V])], 3, { axis: int(-1) });
      const qh = g.op('Transpose', [g.op('Reshape', [q, headsShape])], { perm: ints([0, 2, 1, 3]) }); // [N,H,S,D]
      const kh = g.op('Transpose', [g.op('Reshape', [k, headsShape])], { perm: ints([0, 2, 3, 1]) }); // [N,H,D,S]
      const vh = g.op('Transpose', [g.op('Reshape', [vv, headsShape])], { perm: ints([0, 2, 1, 3]) }); // [N,H,S,D]
      const probs = g.op('Softmax', [g.op('MatMul', [qh, kh])], { axis: int(-1) });
      const ctx = g.op('Reshape', [g.op('Transpose', [g.op('MatMul', [probs, vh])], { perm: ints([0, 2, 1, 3]) }), mergeShape]);
      const o = linear(g, ctx, `layers.${i}.self_attn.out_proj`, w.read(visionNames.layer(i, 'self_attn.out_proj.weight')), V, V, w.read(visionNames.layer(i, 'self_attn.out_proj.bias')), dtype);
      h = g.op('Add', [h, cast(g, o, dtype, 'float32')]);

      // --- MLP block (pre-LN): fc1 → GELU (SigLIP: tanh approximation) → fc2
      const n2 = cast(g, layerNorm(h, i, 'layer_norm2'), 'float32', dtype);
      const f1 = linear(g, n2, `layers.${i}.mlp.fc1`, w.read(visionNames.layer(i, 'mlp.fc1.weight')), v.intermediateSize, V, w.read(visionNames.layer(i, 'mlp.fc1.bias')), dtype);
      const act = v.hiddenAct === 'gelu_pytorch_tanh' ? g.op('FastGelu', [f1], {}, 'com.microsoft') : g.op('Gelu', [f1], {}, 'com.microsoft');
      const f2 = linear(g, act, `layers.${i}.mlp.fc2`, w.read(visionNames.layer(i, 'mlp.fc2.weight')), V, v.intermediateSize, w.read(visionNames.layer(i, 'mlp.fc2.bias')), dtype);
      h = g.op('Add', [h, cast(g, f2, dtype, 'float32')]);
    }

    // LLaVA-OneVision takes hidden_states[vision_feature_layer] — no post_layernorm — into the projector.
    const hc = cast(g, h, 'float32', dtype);
    const p1 = linear(g, hc, 'multi_modal_projector.linear_1', w.read(projectorNames.linear1Weight), textHidden, V, w.read(projectorNames.linear1Bias), dtype);
    const pa = cfg.projectorAct === 'gelu' ? g.op('Gelu', [p1], {}, 'com.microsoft') : g.op('FastGelu', [p1], {}, 'com.microsoft');
    const p2 = linear(g, pa, 'multi_modal_projector.linear_2', w.read(projectorNames.linear2Weight), textHidden, textHidden, w.read(projectorNames.linear2Bias), dtype);
    const features = cast(g, p2, dtype, 'float32');
    g.output(bilinearPool(g, features, poolWeights, G, textHidden), 'image_tokens', 'float32', ['num_frames', 'pooled_tokens', textHidden]);
    return g.save(VISION_OPSETS, { 'longsight.graph': 'vision', 'longsight.layers_used': String(v.layersUsed) }, 'LLaVA-OneVision SigLIP encoder + projector');
  } catch (err) {
    g.discard();
    throw err;
  }
}

/**
 * features [N, G·G, D] (row-major grid, channels last) → [N, s·s, D]: Y[n,:,:,d] = W · X[n,:,:,d] · Wᵀ.
 * Channels go in front so both MatMuls contract the grid axes: [N,D,G,G] → W·X → [N,D,s,G] → ·Wᵀ → [N,D,s,s].
 */
function bilinearPool(g: GraphScope, features: string, weights: string, grid: number, dim: number): string {
  const channelsFirst = g.op('Transpose', [g.op('Reshape', [features, g.constInt64([0, grid, grid, dim])])], { perm: ints([0, 3, 1, 2]) });
  const rows = g.op('MatMul', [weights, channelsFirst]);
  const both = g.op('MatMul', [rows, g.op('Transpose', [weights], { perm: ints([1, 0]) })]);
  return g.op('Reshape', [g.op('Transpose', [both], { perm: ints([0, 2, 3, 1]) }), g.constInt64([0, -1, dim])]);
}
