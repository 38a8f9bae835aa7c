/**
 * The checkpoint's config files, validated once (zod) and resolved to the dimensions the
 * converter needs. config.json written by transformers stores only non-default values of the
 * nested configs, so absent keys take SiglipVisionConfig / Qwen2Config defaults (transformers'
 * configuration_siglip.py / configuration_qwen2.py).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';

export class CheckpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointError';
  }
}

export const LLAVA_ONEVISION_ARCHITECTURE = 'LlavaOnevisionForConditionalGeneration';

const VisionConfigSchema = z.object({
  model_type: z.literal('siglip_vision_model', { error: () => 'must be "siglip_vision_model" (LLaVA-OneVision uses a SigLIP vision tower)' }),
  hidden_size: z.number().int().positive().default(768),
  intermediate_size: z.number().int().positive().default(3072),
  num_hidden_layers: z.number().int().positive().default(12),
  num_attention_heads: z.number().int().positive().default(12),
  num_channels: z.literal(3, { error: () => 'must be 3 (RGB)' }).default(3),
  image_size: z.number().int().positive().default(224),
  patch_size: z.number().int().positive().default(16),
  hidden_act: z.enum(['gelu_pytorch_tanh', 'gelu']).default('gelu_pytorch_tanh'),
  layer_norm_eps: z.number().positive().default(1e-6),
  vision_use_head: z.boolean().optional(),
});

const TextConfigSchema = z.object({
  model_type: z.literal('qwen2', { error: () => 'must be "qwen2" (only Qwen2 language models are supported)' }),
  vocab_size: z.number().int().positive().default(151936),
  hidden_size: z.number().int().positive().default(4096),
  intermediate_size: z.number().int().positive().default(22016),
  num_hidden_layers: z.number().int().positive().default(32),
  num_attention_heads: z.number().int().positive().default(32),
  num_key_value_heads: z.number().int().positive().optional(),
  hidden_act: z.literal('silu', { error: () => 'must be "silu" (Qwen2 SwiGLU)' }).default('silu'),
  max_position_embeddings: z.number().int().positive().default(32768),
  rms_norm_eps: z.number().positive().default(1e-6),
  rope_theta: z.number().positive().default(10000),
  rope_scaling: z.null({ error: () => 'must be null: the checkpoint must use plain RoPE (Longsight computes its own rotary tables)' }).optional(),
  tie_word_embeddings: z.boolean().default(false),
  head_dim: z.number().int().positive().optional(),
  bos_token_id: z.number().int().nullable().optional(),
  eos_token_id: z.union([z.number().int(), z.array(z.number().int())]).nullable().optional(),
  pad_token_id: z.number().int().nullable().optional(),
});

const LlavaOnevisionConfigSchema = z.object({
  architectures: z.array(z.string()).optional(),
  model_type: z.literal('llava_onevision', { error: () => 'must be "llava_onevision"' }),
  _name_or_path: z.string().optional(),
  image_token_index: z.number().int().nonnegative().default(151646),
  video_token_index: z.number().int().nonnegative().default(151647),
  projector_hidden_act: z.enum(['gelu', 'gelu_pytorch_tanh'], { error: () => 'must be "gelu" (or "gelu_pytorch_tanh")' }).default('gelu'),
  vision_feature_select_strategy: z.literal('full', { error: () => 'must be "full" (LLaVA-OneVision keeps every SigLIP patch)' }).default('full'),
  vision_feature_layer: z.number({ error: () => 'must be a single layer index (lists of layers are not supported)' }).int().default(-1),
  tie_word_embeddings: z.boolean().default(false),
  text_config: TextConfigSchema,
  vision_config: VisionConfigSchema,
});

const PreprocessorSchema = z.object({
  image_mean: z.tuple([z.number(), z.number(), z.number()]).default([0.5, 0.5, 0.5]),
  image_std: z.tuple([z.number(), z.number(), z.number()]).default([0.5, 0.5, 0.5]),
  rescale_factor: z.number().positive().default(1 / 255),
  resample: z.number().int().nonnegative().default(3),
  size: z
    .union([
      z.object({ height: z.number().int().positive(), width: z.number().int().positive() }),
      z.object({ shortest_edge: z.number().int().positive() }),
      z.number().int().positive(),
    ])
    .optional(),
});

export interface ResolvedConfig {
  modelId: string;
  architecture: string;
  imageTokenId: number;
  videoTokenId: number;
  projectorAct: 'gelu' | 'gelu_pytorch_tanh';
  tieWordEmbeddings: boolean;
  vision: {
    hiddenSize: number;
    intermediateSize: number;
    numLayers: number;
    layersUsed: number;
    numHeads: number;
    imageSize: number;
    patchSize: number;
    gridSize: number;
    hiddenAct: 'gelu_pytorch_tanh' | 'gelu';
    layerNormEps: number;
  };
  text: {
    hiddenSize: number;
    intermediateSize: number;
    numLayers: number;
    numHeads: number;
    numKvHeads: number;
    headDim: number;
    vocabSize: number;
    ropeTheta: number;
    maxPositionEmbeddings: number;
    rmsNormEps: number;
    eosTokenIds: number[];
    padTokenId: number | null;
  };
  processor: {
    imageMean: [number, number, number];
    imageStd: [number, number, number];
    rescaleFactor: number;
    resample: number;
    resizeTo: { height: number; width: number };
  };
}

function readJson(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new CheckpointError(`${file} is missing`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CheckpointError(`${file}: not valid JSON (${(err as Error).message})`);
  }
}

function zodMessage(file: string, error: z.ZodError): string {
  return `${file}: ` + error.issues.map((i) => `${i.path.join('.') || '(root)'} ${i.message}`).join('; ');
}

/** Reads config.json and the processor config of a checkpoint directory. */
export function readCheckpointConfig(dir: string): ResolvedConfig {
  const configPath = path.join(dir, 'config.json');
  const model = resolveModelConfig(readJson(configPath), configPath, path.basename(path.resolve(dir)));
  return { ...model, processor: readProcessorConfig(dir, model.vision.imageSize) };
}

/**
 * A parsed LLaVA-OneVision config.json → the model's dimensions (no files read). Shared by the
 * converter and the memory planner, which plans from a config.json before any weights are downloaded.
 */
export function resolveModelConfig(rawConfig: unknown, configPath: string, fallbackId: string): Omit<ResolvedConfig, 'processor'> {
  const raw = (rawConfig ?? {}) as Record<string, unknown>;
  const archs = raw.architectures;
  if (Array.isArray(archs) && !archs.includes(LLAVA_ONEVISION_ARCHITECTURE)) {
    throw new CheckpointError(`${configPath}: architectures is ${JSON.stringify(archs)}; only ${LLAVA_ONEVISION_ARCHITECTURE} checkpoints are supported`);
  }
  const parsed = LlavaOnevisionConfigSchema.safeParse(raw);
  if (!parsed.success) throw new CheckpointError(zodMessage(configPath, parsed.error));
  const c = parsed.data;
  const v = c.vision_config;
  const t = c.text_config;

  const numKvHeads = t.num_key_value_heads ?? t.num_attention_heads;
  if (t.hidden_size % t.num_attention_heads !== 0 && t.head_dim === undefined) {
    throw new CheckpointError(`${configPath}: text_config.hidden_size ${t.hidden_size} is not divisible by num_attention_heads ${t.num_attention_heads}`);
  }
  const headDim = t.head_dim ?? t.hidden_size / t.num_attention_heads;
  if (t.num_attention_heads % numKvHeads !== 0) {
    throw new CheckpointError(`${configPath}: text_config.num_attention_heads ${t.num_attention_heads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  }
  if (headDim % 16 !== 0) {
    throw new CheckpointError(`${configPath}: text head dim ${headDim} is not a multiple of 16, which onnxruntime's GroupQueryAttention with rotary requires`);
  }
  if (v.hidden_size % v.num_attention_heads !== 0) {
    throw new CheckpointError(`${configPath}: vision_config.hidden_size ${v.hidden_size} is not divisible by num_attention_heads ${v.num_attention_heads}`);
  }
  // HF selects hidden_states[vision_feature_layer]; hidden_states[0] is the embeddings output,
  // hidden_states[k] the output of layer k (1-based), so k layers run.
  const fl = c.vision_feature_layer;
  const layersUsed = fl < 0 ? v.num_hidden_layers + 1 + fl : fl;
  if (layersUsed < 1 || layersUsed > v.num_hidden_layers) {
    throw new CheckpointError(`${configPath}: vision_feature_layer ${fl} selects no encoder layer of the ${v.num_hidden_layers} in vision_config.num_hidden_layers`);
  }

  const eos = t.eos_token_id == null ? [] : Array.isArray(t.eos_token_id) ? t.eos_token_id : [t.eos_token_id];
  return {
    modelId: c._name_or_path && c._name_or_path.length > 0 ? c._name_or_path : fallbackId,
    architecture: LLAVA_ONEVISION_ARCHITECTURE,
    imageTokenId: c.image_token_index,
    videoTokenId: c.video_token_index,
    projectorAct: c.projector_hidden_act,
    tieWordEmbeddings: t.tie_word_embeddings || c.tie_word_embeddings,
    vision: {
      hiddenSize: v.hidden_size,
      intermediateSize: v.intermediate_size,
      numLayers: v.num_hidden_layers,
      layersUsed,
      numHeads: v.num_attention_heads,
      imageSize: v.image_size,
      patchSize: v.patch_size,
      gridSize: Math.floor(v.image_size / v.patch_size),
      hiddenAct: v.hidden_act,
      layerNormEps: v.layer_norm_eps,
    },
    text: {
      hiddenSize: t.hidden_size,
      intermediateSize: t.intermediate_size,
      numLayers: t.num_hidden_layers,
      numHeads: t.num_attention_heads,
      numKvHeads,
      headDim,
      vocabSize: t.vocab_size,
      ropeTheta: t.rope_theta,
      maxPositionEmbeddings: t.max_position_embeddings,
      rmsNormEps: t.rms_norm_eps,
      eosTokenIds: eos,
      padTokenId: t.pad_token_id ?? null,
    },
  };
}

/** preprocessor_config.json (LlavaOnevisionImageProcessor); absent keys fall back to SigLIP's constants. */
function readProcessorConfig(dir: string, imageSize: number): ResolvedConfig['processor'] {
  const file = path.join(dir, 'preprocessor_config.json');
  if (!fs.existsSync(file)) throw new CheckpointError(`${file} is missing (the processor's resize and normalisation constants are read from it)`);
  const parsed = PreprocessorSchema.safeParse(readJson(file));
  if (!parsed.success) throw new CheckpointError(zodMessage(file, parsed.error));
  const p = parsed.data;
  let resizeTo = { height: imageSize, width: imageSize };
  if (typeof p.size === 'number') resizeTo = { height: p.size, width: p.size };
  else if (p.size && 'height' in p.size) resizeTo = { height: p.size.height, width: p.size.width };
  else if (p.size && 'shortest_edge' in p.size) resizeTo = { height: p.size.shortest_edge, width: p.size.shortest_edge };
  return { imageMean: p.image_mean, imageStd: p.image_std, rescaleFactor: p.rescale_factor, resample: p.resample, resizeTo };
}
