/**
 * `longsight-model.json`: the manifest of a converted model package (written by
 * container/convert/, read by the runtime). The layout it describes is documented in
 * container/convert/README.md; this schema is the single source of truth for its fields.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';

export const MANIFEST_FILE = 'longsight-model.json';
export const MODEL_PACKAGE_FORMAT = 'longsight-model';
/**
 * 2: the vision graph pools (input `pool_weights`, output `image_tokens`) and the decoder graph
 * generates in an ONNX Loop (inputs `max_new_tokens`, `prefill_chunk`, `stop_ids`, `temperature`,
 * `seed`; outputs `tokens`, `token_logprobs`). 1: host-side pooling and token loop.
 */
export const MODEL_PACKAGE_VERSION = 2;

const positiveInt = z.number().int().positive();
const tokenId = z.number().int().nonnegative();
const rgb = z.tuple([z.number(), z.number(), z.number()]);

export const ModelPackageManifestSchema = z.object({
  format: z.literal(MODEL_PACKAGE_FORMAT),
  version: z.literal(MODEL_PACKAGE_VERSION),
  /** The checkpoint's `_name_or_path` when present, else the checkpoint directory's name. */
  modelId: z.string().min(1),
  /** Weight / activation dtype of the package (see README: fp16 keeps norms and the residual stream in fp32). */
  dtype: z.enum(['fp32', 'fp16']),
  source: z.object({
    /** sha256 over config.json, the shard index (if any) and the safetensors files (sorted by name), streamed. */
    checkpointSha256: z.string().regex(/^[0-9a-f]{64}$/),
    architecture: z.string(),
    /** `hub`: llava-hf names (`language_model.model.…`); `model-prefixed`: recent transformers (`model.language_model.…`). */
    tensorLayout: z.enum(['hub', 'model-prefixed']),
    /** dtype of the source tensors (embed_tokens'). */
    sourceDtype: z.enum(['F32', 'F16', 'BF16', 'F64']),
    convertedAt: z.string(),
  }),
  vision: z.object({
    /** Side of the square input the processor resizes every frame to (384). */
    imageSize: positiveInt,
    patchSize: positiveInt,
    /** floor(imageSize / patchSize) = 27: patches per side. */
    gridSize: positiveInt,
    /** gridSize² = 729 features per frame. */
    numPatches: positiveInt,
    hiddenSize: positiveInt,
    /** Encoder layers in the checkpoint. */
    numLayers: positiveInt,
    /** Encoder layers actually run (from vision_feature_layer; -1 = all of the checkpoint's). */
    layersUsed: positiveInt,
    /** Width of the projected features = text hiddenSize. */
    projectedSize: positiveInt,
    /** Processor constants, read from preprocessor_config.json: pixel = (byte·rescaleFactor − mean) / std. */
    imageMean: rgb,
    imageStd: rgb,
    rescaleFactor: z.number().positive(),
    /** PIL resample filter id of the processor (3 = bicubic). */
    resample: z.number().int().nonnegative(),
    /** Frames are resized to exactly this (height, width), no aspect-ratio preservation (LLaVA-OneVision's video path). */
    resizeTo: z.object({ height: positiveInt, width: positiveInt }),
  }),
  text: z.object({
    hiddenSize: positiveInt,
    numLayers: positiveInt,
    numHeads: positiveInt,
    numKvHeads: positiveInt,
    headDim: positiveInt,
    intermediateSize: positiveInt,
    vocabSize: positiveInt,
    ropeTheta: z.number().positive(),
    maxPositionEmbeddings: positiveInt,
    rmsNormEps: z.number().positive(),
    tieWordEmbeddings: z.boolean(),
  }),
  tokens: z.object({
    image: tokenId,
    video: tokenId,
    imStart: tokenId,
    imEnd: tokenId,
    /** Generation stops on any of these (im_end first). */
    eos: z.array(tokenId).min(1),
    pad: tokenId.nullable(),
  }),
  /** Paths relative to the package directory. */
  files: z.object({
    vision: z.string(),
    decoder: z.string(),
    embedTokens: z.string(),
    imageNewline: z.string(),
    tokenizer: z.string(),
    tokenizerConfig: z.string(),
    /** The checkpoint's chat template (`{"chat_template": "…"}`); absent: the tokenizer_config's, else the built-in one. */
    chatTemplate: z.string().optional(),
  }),
});

export type ModelPackageManifest = z.infer<typeof ModelPackageManifestSchema>;

export interface ModelPackage {
  dir: string;
  manifest: ModelPackageManifest;
  /** Absolute paths of the package files. */
  paths: ModelPackageManifest['files'];
}

export class ModelPackageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelPackageError';
  }
}

export function dtypeBytes(dtype: ModelPackageManifest['dtype']): number {
  return dtype === 'fp32' ? 4 : 2;
}

/** Reads and validates a package directory: manifest schema, files present, raw tensor sizes. */
export function loadModelPackage(dir: string): ModelPackage {
  const manifestPath = path.join(dir, MANIFEST_FILE);
  if (!fs.existsSync(manifestPath)) throw new ModelPackageError(`${dir}: no ${MANIFEST_FILE} (not a converted Longsight model; run \`longsight convert\`)`);
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
  } catch (err) {
    throw new ModelPackageError(`${manifestPath}: not valid JSON (${(err as Error).message})`);
  }
  const version = (raw as { version?: unknown } | null)?.version;
  if (typeof version === 'number' && version !== MODEL_PACKAGE_VERSION) {
    throw new ModelPackageError(
      `${manifestPath}: package format version ${version}, this runtime reads version ${MODEL_PACKAGE_VERSION}` +
        (version < MODEL_PACKAGE_VERSION ? ' (the package predates in-graph pooling and generation): convert the checkpoint again with `longsight convert`' : ': update Longsight'),
    );
  }
  const parsed = ModelPackageManifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new ModelPackageError(`${manifestPath}: invalid manifest: ${issues}`);
  }
  const manifest = parsed.data;
  const paths = Object.fromEntries(Object.entries(manifest.files).map(([k, rel]) => [k, path.resolve(dir, rel)])) as ModelPackage['paths'];
  for (const [key, p] of Object.entries(paths)) {
    if (!fs.existsSync(p)) throw new ModelPackageError(`${dir}: package file files.${key} = ${path.relative(dir, p)} is missing`);
  }
  const b = dtypeBytes(manifest.dtype);
  const expectEmbed = manifest.text.vocabSize * manifest.text.hiddenSize * b;
  const embedSize = fs.statSync(paths.embedTokens).size;
  if (embedSize !== expectEmbed) throw new ModelPackageError(`${paths.embedTokens}: ${embedSize} bytes, expected ${expectEmbed} ([${manifest.text.vocabSize}, ${manifest.text.hiddenSize}] ${manifest.dtype})`);
  const newlineSize = fs.statSync(paths.imageNewline).size;
  if (newlineSize !== manifest.text.hiddenSize * b) throw new ModelPackageError(`${paths.imageNewline}: ${newlineSize} bytes, expected ${manifest.text.hiddenSize * b}`);
  return { dir: path.resolve(dir), manifest, paths };
}
