/**
 * OnnxEngine: the AnswerEngine the worker runs. One job = one video's frames and its questions:
 *   frames → pixels → SigLIP + projector + bilinear pooling in one graph, frames batched by pooled
 *   side (progressive pooling: s_h for the first frame of each group of K, s_l for the rest) → one
 *   image_newline → the visual tokens replace the `<video>` token of each question's chat prompt →
 *   Qwen2 decoder with the job's RoPE tables, generating inside the graph (one run per answer).
 *
 * What crosses the runtime boundary is kept to what the GPU must see or the host must read (the
 * transfer ledger counts it): pixels in, pooled tokens out; with several questions the shared
 * prefix (chat header + video) is prefilled once, its KV cache fetched once and fed once per
 * question; with one question the whole prompt is one run and no cache crosses at all; only token
 * ids and log-probabilities come back. The host loop (settings.decodeLoop = 'host') is the
 * reference path: one run per token, the cache in and out each step.
 */
import type { InferenceSettings, Question } from '../../lib/contracts';
import { framesBySide, visualTokenCount } from '../model/progressive-pool';
import { OutOfMemoryError, SequenceBudgetError, type AnswerEngine, type EngineAnswer, type EngineInput, type EngineProgress, type EngineResult } from './engine';
import type { KvCache, RotaryTensors } from './decoder';
import type { EmbeddingTable } from './embeddings';
import { generate } from './generate';
import { loadModel, type LoadedModel } from './loaded-model';
import { framesToPixels } from './preprocess';
import { jobPrompts, sharedPrefixLength, timeInstruction, type TokenizedQuestion } from './prompt';
import { jobRotary } from './rotary';
import { createSampler } from './sampler';
import { asOutOfMemory, type ExecutionProviderName, type RunAccounting } from './session';
import { TransferLedger, type RunScope } from './transfer-ledger';
import { VisualSequenceBuilder } from './visual-sequence';

export interface OnnxEngineOptions {
  /** A converted model package (longsight-model.json + graphs). */
  modelDir: string;
  executionProvider?: ExecutionProviderName;
  /** onnxruntime intra-op threads; 0 or absent = onnxruntime's default. */
  threads?: number;
  /** Frames per vision-encoder run. */
  visionBatch?: number;
  /** Progress of every job's long phases (also per job: EngineInput.onProgress). */
  onProgress?: (event: EngineProgress) => void;
  /** Each generation step's logits, before the token is chosen (diagnostics and tests): host-loop jobs only (decodeLoop 'host'); the graph's loop keeps its logits inside. */
  onLogits?: (event: { questionId: string; step: number; logits: Float32Array }) => void;
  /** Replaces the package's stop ids (benchmarks and tests that must generate exactly maxNewTokens pass []). */
  stopIds?: readonly number[];
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
        return await answerJob(model, input, { ...opts, visionBatch });
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

type JobHooks = Pick<OnnxEngineOptions, 'onProgress' | 'onLogits' | 'stopIds'> & { visionBatch: number };

interface JobPlan {
  prompts: TokenizedQuestion[];
  /** The prompt text every question shares (chat header, video, time instruction). */
  promptPrefix: string;
  promptTokens: number[];
  visualTokens: number;
  rotary: ReturnType<typeof jobRotary>;
}

interface Timings {
  frameDecodeMs: number;
  visionMs: number;
  prefillMs: number;
  decodeMs: number;
}

async function answerJob(model: LoadedModel, input: EngineInput, hooks: JobHooks): Promise<EngineResult> {
  const { settings, frames, questions } = input;
  if (frames.length === 0) throw new Error('the job has no frames');
  if (questions.length === 0) throw new Error('the job has no questions');
  const progress = (e: EngineProgress) => {
    hooks.onProgress?.(e);
    input.onProgress?.(e);
  };
  const timings: Timings = { frameDecodeMs: 0, visionMs: 0, prefillMs: 0, decodeMs: 0 };
  const ledger = new TransferLedger();

  const plan = planJob(model, questions, settings, frames.length, input.video);
  const visual = await encodeVideo(model, input, plan.visualTokens, hooks.visionBatch, ledger, timings, progress);
  const prefix = await prefillSharedPrefix(model, plan, visual, settings, ledger, timings, input.signal);
  progress({ stage: 'prefill', done: 1, total: 1 });

  const stopIds = hooks.stopIds ?? model.manifest.tokens.eos;
  const answers: EngineAnswer[] = [];
  for (let i = 0; i < questions.length; i++) {
    input.signal?.throwIfAborted();
    const started = performance.now();
    const r = await answerQuestion(model, plan.prompts[i], prefix, visual, plan, settings, stopIds, ledger, {
      questionId: questions[i].id,
      signal: input.signal,
      onToken: input.onToken,
      onLogits: hooks.onLogits,
    });
    timings.prefillMs += r.prefillMs;
    timings.decodeMs += r.decodeMs;
    ledger.addGeneratedTokens(r.ids.length);
    answers.push({ questionId: questions[i].id, text: r.text, promptTokens: plan.promptTokens[i], generatedTokens: r.ids.length, latencyMs: Math.round(performance.now() - started) });
    progress({ stage: 'decode', done: i + 1, total: questions.length });
  }
  return {
    answers,
    visualTokens: plan.visualTokens,
    ropeScale: plan.rotary.scale,
    ropeMode: plan.rotary.mode,
    pooling: settings.pooling,
    framesUsed: frames.length,
    timings: {
      frameDecodeMs: Math.round(timings.frameDecodeMs),
      visionMs: Math.round(timings.visionMs),
      prefillMs: Math.round(timings.prefillMs),
      decodeMs: Math.round(timings.decodeMs),
    },
    transferBytes: ledger.summary(),
  };
}

/** Everything sized before any work: token counts, the sequence budget, the RoPE tables. */
function planJob(model: LoadedModel, questions: Question[], settings: InferenceSettings, frameCount: number, video: EngineInput['video']): JobPlan {
  const m = model.manifest;
  const visualTokens = visualTokenCount(frameCount, m.vision.gridSize, settings.pooling);
  const { prompts, prefix: promptPrefix } = jobPrompts(model.tokenizer, model.chat, questions.map((q) => q.text), m.tokens.video, timeAwareInstruction(settings, frameCount, video));
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
  return { prompts, promptPrefix, promptTokens, visualTokens, rotary };
}

/** The time instruction of a time-aware job, from the times of the frames it runs on. */
function timeAwareInstruction(settings: InferenceSettings, frameCount: number, video: EngineInput['video']): string | undefined {
  if (!settings.timeAwarePrompt) return undefined;
  if (!video || video.timestamps.length !== frameCount) {
    throw new Error(`a time-aware prompt needs the time of each of the job's ${frameCount} frames (EngineInput.video${video ? ` has ${video.timestamps.length}` : ' is missing'})`);
  }
  return timeInstruction(video.durationSeconds, video.timestamps);
}

/**
 * Frames → the visual token sequence: frames are grouped by pooled side and encoded in batches of
 * `visionBatch`, each run returning pooled tokens only; the builder places them in temporal order.
 */
async function encodeVideo(
  model: LoadedModel,
  input: EngineInput,
  visualTokens: number,
  visionBatch: number,
  ledger: TransferLedger,
  timings: Timings,
  progress: (e: EngineProgress) => void,
): Promise<Float32Array> {
  const m = model.manifest;
  const { frames, settings } = input;
  const builder = new VisualSequenceBuilder(frames.length, m.vision.gridSize, m.text.hiddenSize, settings.pooling);
  if (builder.tokenCount !== visualTokens) throw new Error('visual sequence length does not match the pooling formula');
  const per = 3 * m.vision.imageSize * m.vision.imageSize;
  const accounting: RunAccounting = { ledger, scope: 'job' };
  let done = 0;
  for (const group of framesBySide(frames.length, m.vision.gridSize, settings.pooling)) {
    const tokensPerFrame = group.side * group.side * m.text.hiddenSize;
    for (let start = 0; start < group.frames.length; start += visionBatch) {
      input.signal?.throwIfAborted();
      const batch = group.frames.slice(start, start + visionBatch);
      let t = performance.now();
      const pixels = new Float32Array(batch.length * per);
      const decoded = await Promise.all(batch.map((f) => framesToPixels([frames[f]], model.preprocess, f)));
      decoded.forEach((p, k) => pixels.set(p, k * per));
      timings.frameDecodeMs += performance.now() - t;
      t = performance.now();
      const pooled = await model.vision.encode(pixels, batch.length, group.side, accounting);
      batch.forEach((f, k) => builder.setFrame(f, pooled, k * tokensPerFrame));
      timings.visionMs += performance.now() - t;
      done += batch.length;
      progress({ stage: 'vision', done, total: frames.length });
    }
  }
  return builder.finish(model.imageNewline);
}

/** The KV cache of the prompt part every question shares (chat header + video), or none. */
interface SharedPrefix {
  /** Tokens of each prompt covered by the cache (0: no shared prefix, each question runs its whole prompt). */
  length: number;
  cache: KvCache;
}

/**
 * With several questions, the shared prefix is prefilled once and its cache fetched once (the KV
 * crosses out once per job). With one question nothing is shared: the question's single run
 * prefills the whole prompt and the cache never leaves the runtime.
 */
async function prefillSharedPrefix(
  model: LoadedModel,
  plan: JobPlan,
  visual: Float32Array,
  settings: InferenceSettings,
  ledger: TransferLedger,
  timings: Timings,
  signal: AbortSignal | undefined,
): Promise<SharedPrefix> {
  signal?.throwIfAborted();
  if (plan.prompts.length === 1 && settings.decodeLoop === 'graph') return { length: 0, cache: model.decoder.emptyCache() };
  const t = performance.now();
  const prefixLen = sharedPrefixLength(model.tokenizer, plan.prompts, plan.promptPrefix);
  const prefix = assembleEmbeddings(model.embeddings, plan.prompts[0].ids.slice(0, prefixLen), plan.prompts[0].videoIndex, visual, plan.visualTokens);
  const r = await model.decoder.prefill(prefix.embeds, prefix.count, model.decoder.emptyCache(), plan.rotary.tensors, settings.prefillChunk, { ledger, scope: 'job' }, false);
  timings.prefillMs += performance.now() - t;
  return { length: prefixLen, cache: r.cache };
}

interface QuestionHooks {
  questionId: string;
  signal?: AbortSignal;
  onToken?: EngineInput['onToken'];
  onLogits?: OnnxEngineOptions['onLogits'];
}

interface QuestionResult {
  ids: number[];
  text: string;
  prefillMs: number;
  decodeMs: number;
}

/** One question on top of the shared prefix: in the graph (one run), or by the host loop (reference). */
async function answerQuestion(
  model: LoadedModel,
  prompt: TokenizedQuestion,
  prefix: SharedPrefix,
  visual: Float32Array,
  plan: JobPlan,
  settings: InferenceSettings,
  stopIds: readonly number[],
  ledger: TransferLedger,
  hooks: QuestionHooks,
): Promise<QuestionResult> {
  const rest = assembleEmbeddings(model.embeddings, prompt.ids.slice(prefix.length), prompt.videoIndex - prefix.length, visual, plan.visualTokens);
  const rope: RotaryTensors = plan.rotary.tensors;
  const perQuestion = (scope: RunScope): RunAccounting => ({ ledger, scope });
  if (settings.decodeLoop === 'graph') {
    const t = performance.now();
    const g = await model.decoder.generate(rest.embeds, rest.count, prefix.cache, rope, {
      maxNewTokens: settings.maxNewTokens,
      stopIds,
      chunk: settings.prefillChunk,
      temperature: settings.sampling.temperature,
      seed: settings.sampling.seed,
    }, perQuestion('question'));
    const text = model.tokenizer.decode(g.ids);
    if (hooks.onToken) hooks.onToken(hooks.questionId, text);
    // Prefill and decode share one run here: the whole run counts as decode time.
    return { ids: g.ids, text, prefillMs: 0, decodeMs: performance.now() - t };
  }
  let t = performance.now();
  const state = await model.decoder.prefill(rest.embeds, rest.count, prefix.cache, rope, settings.prefillChunk, perQuestion('question'));
  const prefillMs = performance.now() - t;
  t = performance.now();
  // Every question draws from its own seeded stream: answers do not depend on question order.
  const result = await generate(model.decoder, model.embeddings, state, rope, {
    maxNewTokens: settings.maxNewTokens,
    stopIds: new Set(stopIds),
    sampler: createSampler(settings.sampling),
    signal: hooks.signal,
    accounting: perQuestion('token'),
    onLogits: hooks.onLogits ? (logits, step) => hooks.onLogits!({ questionId: hooks.questionId, step, logits }) : undefined,
    onToken: hooks.onToken ? (ids) => hooks.onToken!(hooks.questionId, model.tokenizer.decode([...ids])) : undefined,
  });
  return { ids: result.ids, text: model.tokenizer.decode(result.ids), prefillMs, decodeMs: performance.now() - t };
}
