/**
 * A model package loaded for inference: the two onnxruntime sessions, the token embedding
 * table, the image_newline vector, the tokenizer and the preprocessing constants.
 */
import { loadModelPackage, type ModelPackage, type ModelPackageManifest } from '../model/package-manifest';
import { DecoderRunner } from './decoder';
import { EmbeddingTable, readVector, type PackageDtype } from './embeddings';
import type { PreprocessConfig } from './preprocess';
import { loadChatFormat, loadTokenizer, type ChatFormat, type PromptTokenizer } from './prompt';
import { createSession, ExecutionProviderError, type SessionConfig } from './session';
import { VisionRunner } from './vision';

export interface LoadedModel {
  pkg: ModelPackage;
  manifest: ModelPackageManifest;
  dtype: PackageDtype;
  vision: VisionRunner;
  decoder: DecoderRunner;
  embeddings: EmbeddingTable;
  imageNewline: Float32Array;
  tokenizer: PromptTokenizer;
  /** How questions become chat prompts: the checkpoint's own template. */
  chat: ChatFormat;
  preprocess: PreprocessConfig;
  close(): Promise<void>;
}

export async function loadModel(modelDir: string, session: SessionConfig): Promise<LoadedModel> {
  const pkg = loadModelPackage(modelDir);
  const m = pkg.manifest;
  if (m.vision.resizeTo.height !== m.vision.resizeTo.width || m.vision.resizeTo.height !== m.vision.imageSize) {
    throw new Error(`${modelDir}: only square resizing to imageSize is supported (resizeTo ${m.vision.resizeTo.height}x${m.vision.resizeTo.width}, imageSize ${m.vision.imageSize})`);
  }
  const dtype: PackageDtype = m.dtype === 'fp16' ? 'float16' : 'float32';
  if (session.executionProvider === 'cuda' && m.dtype !== 'fp16') {
    throw new ExecutionProviderError(
      `${modelDir} is an ${m.dtype} package, and the CUDA execution provider needs fp16: onnxruntime's CUDA GroupQueryAttention kernel ` +
        'exists for fp16/bf16 only, so an fp32 package would run attention on the CPU with copies at every layer. ' +
        'Convert for the GPU with `longsight convert <checkpoint> <out> --target cuda` (or run this package with executionProvider "cpu").',
    );
  }
  // Plain file reads first (they hold nothing open), then the sessions: both, or neither, so a
  // failure leaves no session (or the embedding file) behind.
  const imageNewline = readVector(pkg.paths.imageNewline, m.text.hiddenSize, dtype);
  const tokenizer = loadTokenizer(pkg.paths.tokenizer, pkg.paths.tokenizerConfig);
  const chat = loadChatFormat(pkg.paths);
  if (chat.notice) process.emitWarning(`${modelDir}: ${chat.notice}`, 'LongsightNotice');
  const settled = await Promise.allSettled([createSession(pkg.paths.vision, session), createSession(pkg.paths.decoder, session)]);
  const opened = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const release = () => Promise.all(opened.map((s) => s.release())).then(() => undefined);
  const [visionSession, decoderSession] = opened;
  let vision: VisionRunner;
  let decoder: DecoderRunner;
  let embeddings: EmbeddingTable;
  try {
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    vision = new VisionRunner(visionSession, m.vision.imageSize, m.vision.gridSize, m.vision.projectedSize);
    decoder = new DecoderRunner(decoderSession, {
      layers: m.text.numLayers,
      kvHeads: m.text.numKvHeads,
      headDim: m.text.headDim,
      hidden: m.text.hiddenSize,
      vocab: m.text.vocabSize,
    });
    embeddings = EmbeddingTable.open(pkg.paths.embedTokens, m.text.vocabSize, m.text.hiddenSize, dtype);
  } catch (err) {
    await release();
    throw err;
  }
  return {
    pkg,
    manifest: m,
    dtype,
    vision,
    decoder,
    embeddings,
    imageNewline,
    tokenizer,
    chat: chat.format,
    preprocess: { imageSize: m.vision.imageSize, mean: m.vision.imageMean, std: m.vision.imageStd, rescaleFactor: m.vision.rescaleFactor, resample: m.vision.resample },
    async close() {
      embeddings.close();
      await release();
    },
  };
}
