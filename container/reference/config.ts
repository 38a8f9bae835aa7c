/** The config.json keys the reference reads (LlavaOnevisionConfig with SiglipVisionConfig and Qwen2Config). */
export interface RefVisionConfig {
  hiddenSize: number;
  intermediateSize: number;
  layers: number;
  heads: number;
  imageSize: number;
  patchSize: number;
  layerNormEps: number;
  /** hidden_states index taken as the feature (-1 = output of the last layer, no post-layernorm). */
  featureLayer: number;
}

export interface RefTextConfig {
  hiddenSize: number;
  intermediateSize: number;
  layers: number;
  heads: number;
  kvHeads: number;
  rmsNormEps: number;
  ropeTheta: number;
  vocabSize: number;
  tieWordEmbeddings: boolean;
}

export interface RefConfig {
  vision: RefVisionConfig;
  text: RefTextConfig;
}

function num(obj: Record<string, unknown>, key: string, fallback?: number): number {
  const v = obj[key];
  if (typeof v === 'number') return v;
  if (fallback !== undefined) return fallback;
  throw new Error(`reference: config.json lacks numeric "${key}"`);
}

export function parseRefConfig(config: Record<string, unknown>): RefConfig {
  const v = (config.vision_config ?? {}) as Record<string, unknown>;
  const t = (config.text_config ?? {}) as Record<string, unknown>;
  const featureLayer = config.vision_feature_layer ?? -1;
  if (typeof featureLayer !== 'number') throw new Error('reference: only a single vision_feature_layer is supported');
  if ((config.vision_feature_select_strategy ?? 'full') !== 'full') {
    throw new Error('reference: only vision_feature_select_strategy "full" is supported');
  }
  const heads = num(t, 'num_attention_heads');
  return {
    vision: {
      hiddenSize: num(v, 'hidden_size'),
      intermediateSize: num(v, 'intermediate_size'),
      layers: num(v, 'num_hidden_layers'),
      heads: num(v, 'num_attention_heads'),
      imageSize: num(v, 'image_size'),
      patchSize: num(v, 'patch_size'),
      layerNormEps: num(v, 'layer_norm_eps', 1e-6),
      featureLayer,
    },
    text: {
      hiddenSize: num(t, 'hidden_size'),
      intermediateSize: num(t, 'intermediate_size'),
      layers: num(t, 'num_hidden_layers'),
      heads,
      kvHeads: num(t, 'num_key_value_heads', heads),
      rmsNormEps: num(t, 'rms_norm_eps', 1e-6),
      ropeTheta: num(t, 'rope_theta', 10000), // Qwen2Config's default (config.json omits defaults)
      vocabSize: num(t, 'vocab_size'),
      tieWordEmbeddings: (t.tie_word_embeddings ?? config.tie_word_embeddings ?? false) === true,
    },
  };
}
