/**
 * Hugging Face llava-onevision checkpoint directory → Longsight model package (README.md).
 * Everything is validated (config, tokenizer, every tensor's presence and shape) before any
 * output is written; tensors are then read one at a time and streamed into ONNX external data,
 * so peak memory is about the largest tensor (a few of them for the fused projections).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CheckpointTensors, INDEX_FILE } from '../safetensors/checkpoint';
import { encodeAs, type ComputeDtype } from '../onnx/layers';
import { MANIFEST_FILE, MODEL_PACKAGE_FORMAT, MODEL_PACKAGE_VERSION, ModelPackageManifestSchema, type ModelPackageManifest } from '../model/package-manifest';
import { buildDecoderGraph } from './decoder-graph';
import { CheckpointError, readCheckpointConfig, type ResolvedConfig } from './hf-config';
import { detectLayout, expectedTensors, IMAGE_NEWLINE, textNames } from './tensor-names';
import { buildVisionGraph } from './vision-graph';
import { CheckpointWeights } from './weights';

export type PackageDtype = 'fp32' | 'fp16';

export interface ConvertProgress {
  stage: 'validate' | 'hash' | 'vision' | 'decoder' | 'embeddings' | 'done';
  /** Bytes processed so far over all stages (hashing + tensor reads). */
  done: number;
  total: number;
  detail?: string;
}

export interface ConvertOptions {
  dtype?: PackageDtype;
  onProgress?: (p: ConvertProgress) => void;
  /** Said once when something the runtime will do differently deserves a word (no chat template). */
  onNotice?: (message: string) => void;
}

export const PACKAGE_FILES = {
  vision: 'vision.onnx',
  decoder: 'decoder.onnx',
  embedTokens: 'embed_tokens.bin',
  imageNewline: 'image_newline.bin',
  tokenizer: 'tokenizer.json',
  tokenizerConfig: 'tokenizer_config.json',
} as const;

/** The chat template's file in a package (as the checkpoint's `chat_template.json`). */
export const CHAT_TEMPLATE_FILE = 'chat_template.json';

/**
 * The checkpoint's chat template, copied into the package as `chat_template.json`: the processor's
 * template (`chat_template.json`, or `chat_template.jinja` as recent transformers save it). Without
 * one the runtime tries the tokenizer_config's template, then its built-in LLaVA-OneVision one.
 */
function copyChatTemplate(srcDir: string, outDir: string, notice: (m: string) => void): boolean {
  const json = path.join(srcDir, CHAT_TEMPLATE_FILE);
  const jinja = path.join(srcDir, 'chat_template.jinja');
  const target = path.join(outDir, CHAT_TEMPLATE_FILE);
  if (fs.existsSync(json)) {
    const parsed = JSON.parse(fs.readFileSync(json, 'utf8')) as { chat_template?: unknown };
    if (parsed.chat_template === undefined) throw new CheckpointError(`${json} has no "chat_template" key`);
    fs.copyFileSync(json, target);
    return true;
  }
  if (fs.existsSync(jinja)) {
    fs.writeFileSync(target, JSON.stringify({ chat_template: fs.readFileSync(jinja, 'utf8') }, null, 2) + '\n');
    return true;
  }
  fs.rmSync(target, { force: true });
  notice(`${srcDir} has no chat_template.json or chat_template.jinja: the runtime will render prompts with the tokenizer_config's template if it renders a video, else with its built-in LLaVA-OneVision template`);
  return false;
}
interface TokenIds {
  imStart: number;
  imEnd: number;
  eos: number[];
  pad: number | null;
}

/** Token ids from tokenizer.json's added tokens, cross-checked with config.json. */
function readTokenIds(dir: string, cfg: ResolvedConfig): TokenIds {
  const file = path.join(dir, 'tokenizer.json');
  if (!fs.existsSync(file)) throw new CheckpointError(`${file} is missing`);
  let tok: { added_tokens?: { id: number; content: string }[] };
  try {
    tok = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new CheckpointError(`${file}: not valid JSON (${(err as Error).message})`);
  }
  const added = new Map((tok.added_tokens ?? []).map((t) => [t.content, t.id]));
  const need = (content: string) => {
    const id = added.get(content);
    if (id === undefined) throw new CheckpointError(`${file}: added token "${content}" is missing`);
    return id;
  };
  const imStart = need('<|im_start|>');
  const imEnd = need('<|im_end|>');
  for (const [content, id, key] of [['<image>', cfg.imageTokenId, 'image_token_index'], ['<video>', cfg.videoTokenId, 'video_token_index']] as const) {
    if (need(content) !== id) throw new CheckpointError(`${file}: token "${content}" has id ${added.get(content)} but config.json ${key} is ${id}`);
  }
  const eos = [imEnd, ...cfg.text.eosTokenIds];
  const genFile = path.join(dir, 'generation_config.json');
  if (fs.existsSync(genFile)) {
    try {
      const gen = JSON.parse(fs.readFileSync(genFile, 'utf8')) as { eos_token_id?: number | number[] };
      if (gen.eos_token_id !== undefined) eos.push(...(Array.isArray(gen.eos_token_id) ? gen.eos_token_id : [gen.eos_token_id]));
    } catch (err) {
      throw new CheckpointError(`${genFile}: not valid JSON (${(err as Error).message})`);
    }
  }
  return { imStart, imEnd, eos: [...new Set(eos)], pad: cfg.text.padTokenId ?? added.get('<|endoftext|>') ?? null };
}

/** sha256 over config.json, the index (if any) and the safetensors files in name order, streamed. */
async function hashCheckpoint(dir: string, files: string[], onBytes: (n: number) => void): Promise<string> {
  const h = createHash('sha256');
  const all = ['config.json', ...(fs.existsSync(path.join(dir, INDEX_FILE)) ? [INDEX_FILE] : []), ...files.map((f) => path.basename(f)).sort()];
  for (const f of all) {
    h.update(`${f}\0`);
    await new Promise<void>((resolve, reject) => {
      const s = fs.createReadStream(path.join(dir, f), { highWaterMark: 8 << 20 });
      s.on('data', (chunk) => {
        h.update(chunk);
        onBytes(chunk.length);
      });
      s.on('end', () => resolve());
      s.on('error', reject);
    });
  }
  return h.digest('hex');
}

function writeRaw(file: string, values: Float32Array, dtype: ComputeDtype): void {
  const fd = fs.openSync(file, 'w');
  try {
    const CHUNK = 1 << 22;
    for (let i = 0; i < values.length; i += CHUNK) fs.writeSync(fd, encodeAs(values.subarray(i, i + CHUNK), dtype));
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes embed_tokens.bin and image_newline.bin; returns the embedding matrix, which the decoder graph takes next (the loop feeds chosen tokens' rows back). */
function writeEmbeddings(outDir: string, weights: CheckpointWeights, compute: ComputeDtype): Float32Array {
  const embed = weights.read(textNames.embedTokens);
  writeRaw(path.join(outDir, PACKAGE_FILES.embedTokens), embed, compute);
  writeRaw(path.join(outDir, PACKAGE_FILES.imageNewline), weights.read(IMAGE_NEWLINE), compute);
  return embed;
}

export async function convertCheckpoint(srcDir: string, outDir: string, opts: ConvertOptions = {}): Promise<ModelPackageManifest> {
  const dtype: PackageDtype = opts.dtype ?? 'fp32';
  const compute: ComputeDtype = dtype === 'fp16' ? 'float16' : 'float32';
  const progress = opts.onProgress ?? (() => undefined);
  if (!fs.existsSync(srcDir) || !fs.statSync(srcDir).isDirectory()) throw new CheckpointError(`${srcDir} is not a directory`);

  // ---- validate everything before writing anything
  const cfg = readCheckpointConfig(srcDir);
  const tokens = readTokenIds(srcDir, cfg);
  const tokCfg = path.join(srcDir, 'tokenizer_config.json');
  if (!fs.existsSync(tokCfg)) throw new CheckpointError(`${tokCfg} is missing`);
  const tensors = CheckpointTensors.open(srcDir);
  try {
    const layout = detectLayout(tensors.names());
    if (!layout) throw new CheckpointError(`${srcDir}: no LLaVA-OneVision tensors found (expected names like "${textNames.embedTokens}" or "model.language_model.embed_tokens.weight")`);
    let done = 0;
    let total = 0;
    let stage: ConvertProgress['stage'] = 'validate';
    const weights = new CheckpointWeights(tensors, layout, (name, bytes) => {
      done += bytes;
      progress({ stage, done, total, detail: name });
    });
    const hasLmHead = weights.has(textNames.lmHead);
    if (!hasLmHead && !cfg.tieWordEmbeddings) {
      throw new CheckpointError(`missing tensor "${weights.actualName(textNames.lmHead)}" in ${srcDir} (and text_config.tie_word_embeddings is false, so embed_tokens cannot stand in)`);
    }
    const expected = expectedTensors({
      vision: { ...cfg.vision, numLayers: cfg.vision.layersUsed, numPatches: cfg.vision.gridSize ** 2 },
      text: cfg.text,
      withLmHead: hasLmHead,
    }).filter((e) => !e.name.startsWith('vision_tower.vision_model.post_layernorm')); // unused: LLaVA-OneVision skips post_layernorm
    for (const e of expected) weights.check(e.name, e.shape);

    const sourceDtype = tensors.info(weights.actualName(textNames.embedTokens)).dtype as ModelPackageManifest['source']['sourceDtype'];
    const tensorBytes = expected.reduce((a, e) => a + weights.byteLength(e.name), 0);
    const hashBytes = [path.join(srcDir, 'config.json'), ...(fs.existsSync(path.join(srcDir, INDEX_FILE)) ? [path.join(srcDir, INDEX_FILE)] : []), ...tensors.files.map((f) => f.path)].reduce(
      (a, f) => a + fs.statSync(f).size,
      0,
    );
    total = tensorBytes + hashBytes;
    progress({ stage, done, total });

    // ---- hash the source (identifies what a package was converted from)
    stage = 'hash';
    const checkpointSha256 = await hashCheckpoint(srcDir, tensors.files.map((f) => f.path), (n) => {
      done += n;
      progress({ stage: 'hash', done, total });
    });

    fs.mkdirSync(outDir, { recursive: true });
    fs.rmSync(path.join(outDir, MANIFEST_FILE), { force: true }); // the manifest is written last: its presence marks a complete package

    stage = 'vision';
    buildVisionGraph(path.join(outDir, PACKAGE_FILES.vision), cfg, weights, compute);

    stage = 'embeddings';
    let embed: Float32Array | undefined = writeEmbeddings(outDir, weights, compute);

    stage = 'decoder';
    buildDecoderGraph(path.join(outDir, PACKAGE_FILES.decoder), cfg, weights, compute, {
      // Taken once, before the layers are read, then dropped: a 7B table is 2 GB in float32.
      embedTokens: () => {
        const e = embed!;
        embed = undefined;
        return e;
      },
      lmHead: hasLmHead ? () => weights.read(textNames.lmHead) : undefined,
    });

    fs.copyFileSync(path.join(srcDir, 'tokenizer.json'), path.join(outDir, PACKAGE_FILES.tokenizer));
    fs.copyFileSync(tokCfg, path.join(outDir, PACKAGE_FILES.tokenizerConfig));
    const hasTemplate = copyChatTemplate(srcDir, outDir, opts.onNotice ?? (() => undefined));

    const manifest: ModelPackageManifest = ModelPackageManifestSchema.parse({
      format: MODEL_PACKAGE_FORMAT,
      version: MODEL_PACKAGE_VERSION,
      modelId: cfg.modelId,
      dtype,
      source: { checkpointSha256, architecture: cfg.architecture, tensorLayout: layout, sourceDtype, convertedAt: new Date().toISOString() },
      vision: {
        imageSize: cfg.vision.imageSize,
        patchSize: cfg.vision.patchSize,
        gridSize: cfg.vision.gridSize,
        numPatches: cfg.vision.gridSize ** 2,
        hiddenSize: cfg.vision.hiddenSize,
        numLayers: cfg.vision.numLayers,
        layersUsed: cfg.vision.layersUsed,
        projectedSize: cfg.text.hiddenSize,
        imageMean: cfg.processor.imageMean,
        imageStd: cfg.processor.imageStd,
        rescaleFactor: cfg.processor.rescaleFactor,
        resample: cfg.processor.resample,
        resizeTo: cfg.processor.resizeTo,
      },
      text: {
        hiddenSize: cfg.text.hiddenSize,
        numLayers: cfg.text.numLayers,
        numHeads: cfg.text.numHeads,
        numKvHeads: cfg.text.numKvHeads,
        headDim: cfg.text.headDim,
        intermediateSize: cfg.text.intermediateSize,
        vocabSize: cfg.text.vocabSize,
        ropeTheta: cfg.text.ropeTheta,
        maxPositionEmbeddings: cfg.text.maxPositionEmbeddings,
        rmsNormEps: cfg.text.rmsNormEps,
        tieWordEmbeddings: !hasLmHead,
      },
      tokens: { image: cfg.imageTokenId, video: cfg.videoTokenId, imStart: tokens.imStart, imEnd: tokens.imEnd, eos: tokens.eos, pad: tokens.pad },
      files: { ...PACKAGE_FILES, ...(hasTemplate ? { chatTemplate: CHAT_TEMPLATE_FILE } : {}) },
    });
    fs.writeFileSync(path.join(outDir, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
    progress({ stage: 'done', done: total, total });
    return manifest;
  } finally {
    tensors.close();
  }
}

