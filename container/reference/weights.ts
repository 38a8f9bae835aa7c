/**
 * Weight access for the reference forward: tensors by their Hugging Face name, as float64.
 * LLaVA-OneVision checkpoints come in two layouts: the hub's original one
 * (`vision_tower.…`, `multi_modal_projector.…`, `image_newline`, `language_model.model.…`,
 * `language_model.lm_head.weight`) and the one recent transformers versions save
 * (`model.vision_tower.…`, `model.multi_modal_projector.…`, `model.image_newline`,
 * `model.language_model.…`, `lm_head.weight`). The reference resolves names itself, on purpose
 * independently of the converter.
 */
import { mat, type Mat } from './math';

export interface RefTensor {
  shape: number[];
  data: Float64Array;
}

/** Raw lookup by exact checkpoint name. */
export interface TensorLookup {
  has(name: string): boolean;
  get(name: string): RefTensor;
}

/** Logical parts of the model, each mapped to the checkpoint's prefix. */
export interface ReferenceWeights {
  vision(name: string): RefTensor;
  projector(name: string): RefTensor;
  imageNewline(): Float64Array;
  text(name: string): RefTensor;
  lmHead(): RefTensor;
}

export function resolveLayout(lookup: TensorLookup, tieWordEmbeddings: boolean): ReferenceWeights {
  const modern = lookup.has('model.image_newline') || lookup.has('model.language_model.embed_tokens.weight');
  const visionPrefix = modern ? 'model.vision_tower.vision_model.' : 'vision_tower.vision_model.';
  const projectorPrefix = modern ? 'model.multi_modal_projector.' : 'multi_modal_projector.';
  const textPrefix = modern ? 'model.language_model.' : 'language_model.model.';
  const headName = modern ? 'lm_head.weight' : 'language_model.lm_head.weight';
  return {
    vision: (n) => lookup.get(visionPrefix + n),
    projector: (n) => lookup.get(projectorPrefix + n),
    imageNewline: () => lookup.get(modern ? 'model.image_newline' : 'image_newline').data,
    text: (n) => lookup.get(textPrefix + n),
    lmHead: () => {
      if (lookup.has(headName)) return lookup.get(headName);
      if (tieWordEmbeddings) return lookup.get(textPrefix + 'embed_tokens.weight');
      throw new Error(`reference: checkpoint has no ${headName} and tie_word_embeddings is false`);
    },
  };
}

export function asMat(t: RefTensor): Mat {
  if (t.shape.length !== 2) throw new Error(`expected a 2-D tensor, got shape [${t.shape.join(', ')}]`);
  return mat(t.shape[0], t.shape[1], t.data);
}

/** Memoises float64 conversions (the reference reads each weight many times across runs). */
export function cachedLookup(inner: TensorLookup): TensorLookup {
  const cache = new Map<string, RefTensor>();
  return {
    has: (n) => inner.has(n),
    get: (n) => {
      let t = cache.get(n);
      if (!t) {
        t = inner.get(n);
        cache.set(n, t);
      }
      return t;
    },
  };
}
