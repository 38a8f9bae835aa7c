/**
 * OnnxEngine: the AnswerEngine the worker runs. One job = one video's frames and its questions:
 *   frames → pixels (sharp) → SigLIP+projector in batches → per-frame pooling (progressive
 *   pooling schedule; stock = every frame 14×14) → one image_newline → the visual tokens replace
 *   the `<video>` token of each question's chat prompt → Qwen2 decoder with the job's RoPE tables.
 * The prompt prefix shared by all questions (everything up to the question, the video included)
 * is prefilled once; each question continues from that cache (caches are immutable values, so
 * "a copy" costs nothing) and gives the same tokens as a separate full run.
 */
import { visualTokenCount } from '../model/progressive-pool';
import { OutOfMemoryError, SequenceBudgetError, type AnswerEngine, type EngineAnswer, type EngineInput, type EngineResult } from './engine';
import type { DecoderRunner, KvCache, RotaryTensors } from './decoder';
import type { EmbeddingTable } from './embeddings';
import { generate } from './generate';
import { loadModel, type LoadedModel } from './loaded-model';
import { framesToPixels } from './preprocess';
import { sharedPrefixLength, tokenizeQuestion, type TokenizedQuestion } from './prompt';
import { jobRotary } from './rotary';
import { createSampler } from './sampler';
import { asOutOfMemory, type ExecutionProviderName } from './session';
import { VisualSequenceBuilder } from './visual-sequence';

export interface OnnxEngineOptions {
  /** A converted model package (longsight-model.json + graphs). */
  modelDir: string;
  executionProvider?: ExecutionProviderName;
  /** onnxruntime intra-op threads; 0 or absent = onnxruntime's default. */
  threads?: number;
  /** Frames per vision-encoder run. */
  visionBatch?: number;
  /** Progress of long phases (vision batches, prefill chunks). */
  onProgress?: (event: { phase: 'vision' | 'prefill'; done: number; total: number }) => void;
  /** Each generation step's logits, before the token is chosen (diagnostics and tests). */
  onLogits?: (event: { questionId: string; step: number; logits: Float32Array }) => void;
}

export interface OnnxEngine extends AnswerEngine {
  readonly model: LoadedModel;
}

/** Rows for `ids` with the visual sequence spliced in at `videoIndex` (when it falls inside). */
export function assembleEmbeddings(
  embeddings: EmbeddingTable,
  ids: readonly number[],
  videoIndex: number,
  visual: Float32Array,
  visualTokens: number,
): { embeds: Float32Array; count: number } {
  const h = embeddings.hidden;
  if (videoIndex < 0 || videoIndex >= ids.length) return { embeds: embeddings.gather(ids), count: ids.length };
  const count = ids.length - 1 + visualTokens;
  const embeds = new Float32Array(count * h);
  embeds.set(embeddings.gather(ids.slice(0, videoIndex)), 0);
  embeds.set(visual, videoIndex * h);
  embeds.set(embeddings.gather(ids.slice(videoIndex + 1)), (videoIndex + visualTokens) * h);
  return { embeds, count };
}

export async function createOnnxEngine(opts: OnnxEngineOptions): Promise<OnnxEngine> {
  const visionBatch = opts.visionBatch ?? 8;
  if (!Number.isInteger(visionBatch) || visionBatch < 1) throw new Error(`visionBatch must be a positive integer, got ${visionBatch}`);
  const threads = opts.threads ?? 0;
  if (!Number.isInteger(threads) || threads < 0) throw new Error(`threads must be a non-negative integer, got ${threads}`);
  const model = await loadModel(opts.modelDir, { executionProvider: opts.executionProvider ?? 'cpu', threads });
  return {
    model,
    modelId: model.manifest.modelId,
    answer: async (input) => {
      try {
        return await answerJob(model, input, visionBatch, opts);
      } catch (err) {
        if (err instanceof RangeError && /allocation failed|Invalid typed array length|Array buffer/i.test(err.message)) {
          throw new OutOfMemoryError(`JavaScript heap could not allocate a tensor: ${err.message}`);
        }
        throw asOutOfMemory(err) ?? err;
      }
    },
    close: () => model.close(),
  };
}

async function answerJob(
  model: LoadedModel,
  input: EngineInput,
  visionBatch: number,
  hooks: Pick<OnnxEngineOptions, 'onProgress' | 'onLogits'>,
): Promise<EngineResult> {
  const { onProgress, onLogits } = hooks;
  const { settings, frames, questions } = input;
  const m = model.manifest;
  if (frames.length === 0) throw new Error('the job has no frames');
  if (questions.length === 0) throw new Error('the job has no questions');
  const timings = { frameDecodeMs: 0, visionMs: 0, prefillMs: 0, decodeMs: 0 };

  // Everything sized before any work: token counts, the sequence budget, the RoPE tables.
  const grid = m.vision.gridSize;
  const visualTokens = visualTokenCount(frames.length, grid, settings.pooling);
  const prompts = questions.map((q) => tokenizeQuestion(model.tokenizer, q.text, m.tokens.video));
  const promptTokens = prompts.map((p) => p.ids.length - 1 + visualTokens);
  const longest = Math.max(...promptTokens) + settings.maxNewTokens;
  if (longest > settings.maxSequenceTokens) throw new SequenceBudgetError(longest, settings.maxSequenceTokens);
  const rotary = jobRotary(model.decoder, {
    headDim: m.text.headDim,
    ropeTheta: m.text.ropeTheta,
    languageWindow: m.text.maxPositionEmbeddings,
    rope: settings.rope,
    visualTokens,
    positions: longest,
  });

  // Frames → pooled visual tokens, one vision batch at a time (bounded memory).
  const builder = new VisualSequenceBuilder(frames.length, grid, m.text.hiddenSize, settings.pooling);
  for (let start = 0; start < frames.length; start += visionBatch) {
    input.signal?.throwIfAborted();
    const batch = frames.slice(start, start + visionBatch);
    let t = performance.now();
    const pixels = await framesToPixels(batch, model.preprocess, start);
    timings.frameDecodeMs += performance.now() - t;
    t = performance.now();
    const features = await model.vision.encode(pixels, batch.length, visionBatch);
    for (const f of features) builder.addFrame(f);
    timings.visionMs += performance.now() - t;
    onProgress?.({ phase: 'vision', done: start + batch.length, total: frames.length });
  }
  const visual = builder.finish(model.imageNewline);

  // The shared prefix (chat header + video) once.
  let t = performance.now();
  const prefixLen = sharedPrefixLength(model.tokenizer, prompts);
  const prefixIds = prompts[0].ids.slice(0, prefixLen);
  const prefix = assembleEmbeddings(model.embeddings, prefixIds, prompts[0].videoIndex, visual, visualTokens);
  const prefixState = await model.decoder.prefill(prefix.embeds, prefix.count, model.decoder.emptyCache(), rotary.tensors, settings.prefillChunk, (done, total) =>
    onProgress?.({ phase: 'prefill', done, total }),
  );
  timings.prefillMs += performance.now() - t;

  const stopIds = new Set(m.tokens.eos);
  const answers: EngineAnswer[] = [];
  for (let i = 0; i < questions.length; i++) {
    input.signal?.throwIfAborted();
    const started = performance.now();
    const questionId = questions[i].id;
    const r = await answerFromPrefix(model, prompts[i], prefixLen, prefixState.cache, rotary.tensors, settings.prefillChunk, {
      maxNewTokens: settings.maxNewTokens,
      stopIds,
      sampling: settings.sampling,
      signal: input.signal,
      onText: input.onToken ? (text) => input.onToken!(questionId, text) : undefined,
      onLogits: onLogits ? (logits, step) => onLogits({ questionId, step, logits }) : undefined,
    });
    timings.prefillMs += r.prefillMs;
    timings.decodeMs += r.decodeMs;
    answers.push({
      questionId: questions[i].id,
      text: r.text,
      promptTokens: promptTokens[i],
      generatedTokens: r.ids.length,
      latencyMs: Math.round(performance.now() - started),
    });
  }
  return {
    answers,
    visualTokens,
    ropeScale: rotary.scale,
    ropeMode: rotary.mode,
    pooling: settings.pooling,
    framesUsed: frames.length,
    timings: {
      frameDecodeMs: Math.round(timings.frameDecodeMs),
      visionMs: Math.round(timings.visionMs),
      prefillMs: Math.round(timings.prefillMs),
      decodeMs: Math.round(timings.decodeMs),
    },
  };
}

interface QuestionRun {
  maxNewTokens: number;
  stopIds: ReadonlySet<number>;
  sampling: { temperature: number; topP: number; seed: number };
  signal?: AbortSignal;
  onText?: (text: string) => void;
  onLogits?: (logits: Float32Array, step: number) => void;
}

/** Prefills the question's own tokens on the shared prefix cache, then generates. */
async function answerFromPrefix(
  model: LoadedModel,
  prompt: TokenizedQuestion,
  prefixLen: number,
  prefixCache: KvCache,
  rope: RotaryTensors,
  chunk: number,
  run: QuestionRun,
): Promise<{ ids: number[]; text: string; prefillMs: number; decodeMs: number }> {
  const decoder: DecoderRunner = model.decoder;
  let t = performance.now();
  const rest = prompt.ids.slice(prefixLen);
  const state = await decoder.prefill(model.embeddings.gather(rest), rest.length, prefixCache, rope, chunk);
  const prefillMs = performance.now() - t;
  t = performance.now();
  // Every question draws from its own seeded stream: answers do not depend on question order.
  const sampler = createSampler(run.sampling);
  const result = await generate(decoder, model.embeddings, state, rope, {
    maxNewTokens: run.maxNewTokens,
    stopIds: run.stopIds,
    sampler,
    signal: run.signal,
    onLogits: run.onLogits,
    onToken: run.onText ? (ids) => run.onText!(model.tokenizer.decode([...ids])) : undefined,
  });
  return { ids: result.ids, text: model.tokenizer.decode(result.ids), prefillMs, decodeMs: performance.now() - t };
}
