/**
 * The model dimensions the memory planner needs, from either a converted package's manifest
 * (`longsight-model.json`, plus the sizes of its weight files) or a Hugging Face
 * LLaVA-OneVision `config.json` (no weights needed: plan before downloading 16 GB).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { MANIFEST_FILE, ModelPackageManifestSchema, type ModelPackageManifest } from '../model/package-manifest';
import { CheckpointError, resolveModelConfig } from '../convert/hf-config';

export interface PlanModel {
  id: string;
  source: 'package' | 'config.json';
  vision: {
    hiddenSize: number;
    intermediateSize: number;
    layersUsed: number;
    numHeads: number;
    patchSize: number;
    /** Patches per side (27 for SigLIP-so400m/14 at 384 px). */
    gridSize: number;
    /** Side of the square input frame (384). */
    imageSize: number;
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
    /** lm_head is embed_tokens: the decoder graph then holds one [vocab, hidden] matrix, else two (lm_head + the loop's embedding table). */
    tieWordEmbeddings: boolean;
  };
  /** The package's dtype (packages only). */
  packageDtype?: 'fp32' | 'fp16';
  /** Bytes of the package's weight files (packages only): what onnxruntime actually loads. */
  fileBytes?: { vision: number; decoder: number; embeddings: number };
  /** Assumptions made while reading (shown by the CLI). */
  notes: string[];
}

export class PlanInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PlanInputError';
  }
}

function issues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || '(root)'} ${i.message}`).join('; ');
}

/** The decoder dimensions the planner uses: the converter's config and the package manifest name them alike. */
function decoderDims(t: PlanModel['text']): PlanModel['text'] {
  const { hiddenSize, intermediateSize, numLayers, numHeads, numKvHeads, headDim, vocabSize, ropeTheta, maxPositionEmbeddings, tieWordEmbeddings } = t;
  return { hiddenSize, intermediateSize, numLayers, numHeads, numKvHeads, headDim, vocabSize, ropeTheta, maxPositionEmbeddings, tieWordEmbeddings };
}

/** A parsed Hugging Face config.json object → PlanModel, through the converter's own config resolver. */
export function planModelFromHfConfig(raw: unknown, where = 'config.json'): PlanModel {
  let c: ReturnType<typeof resolveModelConfig>;
  try {
    c = resolveModelConfig(raw, where, path.basename(path.dirname(path.resolve(where))));
  } catch (e) {
    if (e instanceof CheckpointError) throw new PlanInputError(e.message);
    throw e;
  }
  const { vision: v, text: t } = c;
  return {
    id: c.modelId,
    source: 'config.json',
    vision: { hiddenSize: v.hiddenSize, intermediateSize: v.intermediateSize, layersUsed: v.layersUsed, numHeads: v.numHeads, patchSize: v.patchSize, gridSize: v.gridSize, imageSize: v.imageSize },
    text: decoderDims({ ...t, tieWordEmbeddings: c.tieWordEmbeddings }),
    notes: [],
  };
}

/** Parameters of one SigLIP encoder layer (q/k/v/out with biases, two LayerNorms, fc1/fc2 with biases). */
export function visionLayerParams(hidden: number, intermediate: number): number {
  return 4 * (hidden * hidden + hidden) + 2 * hidden + 2 * hidden + (hidden * intermediate + intermediate) + (intermediate * hidden + hidden);
}

/**
 * A package manifest → PlanModel. The manifest does not record the SigLIP MLP width or head count:
 * the width is solved from the vision weight bytes when known (the per-layer parameter count is
 * linear in it), the head count assumes SigLIP's head dim (72 for so400m's 1152, else 64).
 */
export function planModelFromManifest(manifest: ModelPackageManifest, fileBytes?: PlanModel['fileBytes']): PlanModel {
  const v = manifest.vision;
  const t = manifest.text;
  const notes: string[] = [];
  const hv = v.hiddenSize;
  const headDimV = hv % 72 === 0 ? 72 : hv % 64 === 0 ? 64 : hv;
  const numHeads = Math.max(1, Math.round(hv / headDimV));
  notes.push(`vision heads assumed ${numHeads} (head dim ${headDimV}; the manifest does not record it)`);
  let intermediate = Math.round((hv * 4304) / 1152); // SigLIP-so400m's ratio as the fallback
  if (fileBytes && fileBytes.vision > 0) {
    const b = manifest.dtype === 'fp16' ? 2 : 4;
    const fixed = 3 * v.patchSize * v.patchSize * hv + hv + v.numPatches * hv + (hv * t.hiddenSize + t.hiddenSize) + (t.hiddenSize * t.hiddenSize + t.hiddenSize);
    const perLayer = (fileBytes.vision / b - fixed) / v.layersUsed;
    // perLayer = 4h² + 9h + I·(2h + 1)  (see visionLayerParams)
    const solved = Math.round((perLayer - 4 * hv * hv - 9 * hv) / (2 * hv + 1));
    if (solved > 0) {
      intermediate = solved;
      notes.push(`vision MLP width ${solved} derived from the vision weight bytes`);
    }
  } else {
    notes.push(`vision MLP width assumed ${intermediate}`);
  }
  return {
    id: manifest.modelId,
    source: 'package',
    vision: { hiddenSize: hv, intermediateSize: intermediate, layersUsed: v.layersUsed, numHeads, patchSize: v.patchSize, gridSize: v.gridSize, imageSize: v.imageSize },
    text: decoderDims(t),
    packageDtype: manifest.dtype,
    fileBytes,
    notes,
  };
}

function fileSize(p: string): number {
  return fs.existsSync(p) ? fs.statSync(p).size : 0;
}

/** Bytes of an ONNX model and its external data file(s) (`<model>.data`, as the converter writes). */
function onnxBytes(dir: string, rel: string): number {
  const p = path.resolve(dir, rel);
  return fileSize(p) + fileSize(`${p}.data`);
}

/**
 * Reads what `--model` names: a package directory (with longsight-model.json), a config.json file,
 * or a checkpoint directory holding config.json.
 */
export function loadPlanModel(target: string): PlanModel {
  if (!fs.existsSync(target)) throw new PlanInputError(`${target}: no such file or directory (give a model package directory or a config.json)`);
  const stat = fs.statSync(target);
  if (stat.isDirectory()) {
    const manifestPath = path.join(target, MANIFEST_FILE);
    if (fs.existsSync(manifestPath)) {
      const parsed = ModelPackageManifestSchema.safeParse(readJson(manifestPath));
      if (!parsed.success) throw new PlanInputError(`${manifestPath}: invalid manifest: ${issues(parsed.error)}`);
      const m = parsed.data;
      return planModelFromManifest(m, {
        vision: onnxBytes(target, m.files.vision),
        decoder: onnxBytes(target, m.files.decoder),
        embeddings: fileSize(path.resolve(target, m.files.embedTokens)),
      });
    }
    const configPath = path.join(target, 'config.json');
    if (fs.existsSync(configPath)) return planModelFromHfConfig(readJson(configPath), configPath);
    throw new PlanInputError(`${target}: neither ${MANIFEST_FILE} (a converted package) nor config.json (a Hugging Face checkpoint) is there`);
  }
  const raw = readJson(target) as Record<string, unknown>;
  if (raw && raw.format === 'longsight-model') throw new PlanInputError(`${target}: give the package directory, not its manifest, so the weight files can be measured`);
  return planModelFromHfConfig(raw, target);
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new PlanInputError(`${file}: not readable JSON (${(err as Error).message})`);
  }
}
