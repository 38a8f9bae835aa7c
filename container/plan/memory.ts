/**
 * The memory planner: how many visual tokens a job makes, the RoPE scale s it implies, and the
 * memory it needs, for the stock pipeline and the chosen settings side by side. Pure arithmetic
 * over the model's dimensions; `longsight plan` prints it.
 *
 * What is counted, and why (our runtime, not Hugging Face's: see container/runtime/decoder.ts):
 * - Weights: the vision graph (SigLIP layers used + projector) and the decoder graph (Qwen2 layers,
 *   lm_head, and — untied checkpoints only — the token-embedding table its generation loop gathers
 *   chosen tokens' rows from). On the CPU that table stays memory-mapped (only gathered rows are
 *   ever read), so it is not resident; on a GPU it is. The package's embed_tokens.bin is listed but
 *   not resident: the runtime gathers prompt rows from disk (container/runtime/embeddings.ts).
 * - KV cache: 2·layers·kvHeads·headDim·bytes per token. onnxruntime returns each step's cache as a
 *   fresh `present_*` tensor, so during a step the past (P tokens) and the present (P + C) both
 *   live, and the arena keeps the blocks of the smaller caches it freed (≈ one more past).
 * - Prefill activations for one chunk of C tokens on top of P cached ones (the worst chunk): the
 *   layer's intermediates (see phaseBudget) and the attention scores — none with a flash kernel
 *   (onnxruntime 1.30: CUDA fp16, and the CPU's fp32 prefill path), heads·C·(P + C) fp32 values
 *   with the naive one (CPU fp16, and every decode step); one row of logits (last position only).
 * - Decode: the same for one token at the full sequence length.
 * - Vision: one batch of frames through SigLIP (attention scores batch·heads·729², MLP, residual).
 * - Host: the float32 visual sequence and prompt embeddings the runtime assembles (in the process
 *   total on the CPU target, listed apart on the GPU target).
 * - Overhead: the CUDA context and workspaces (an allowance) on a GPU; per-session state and the
 *   JS heap (measured) on the CPU, where loading also briefly holds the weights twice.
 * Peak = resident weights + overhead + the largest phase (vision, prefill or decode).
 *
 * The paper reports 73 GB → 40 GB at 256 frames (−45%) for its (PyTorch) implementation, whose
 * prefill most likely computed logits for every position (50K × 152K fp32 values alone are ~30 GB)
 * and ran the whole prompt at once. Our decoder emits the last position's logits only and prefills
 * in chunks, so absolute numbers are lower and the saving is smaller; the planner shows ours.
 */
import {
  GPU_INSTANCE_TYPES,
  RopeExtensionSchema,
  STOCK_POOLING,
  type PoolingSchedule,
  type RopeExtension,
  type RopeMode,
} from '../../lib/contracts';
import type { ModelPackageManifest } from '../model/package-manifest';
import { visualTokenCount } from '../model/progressive-pool';
import { computeRopeFrequencies } from '../model/yarn-rope';
import { planModelFromHfConfig, planModelFromManifest, visionLayerParams, type PlanModel } from './model-dims';

export type PlanDtype = 'fp32' | 'fp16';
/** 'gpu': device memory of a CUDA worker (host arrays reported apart); 'cpu': everything is one process's RSS. */
export type PlanTarget = 'gpu' | 'cpu';
export type AttentionKernel = 'materialized' | 'flash';

/**
 * Text tokens of the chat prompt around the question, the `<video>` placeholder excluded:
 * `<|im_start|>` `user` `\n` … `\n` | question | `<|im_end|>` `\n` `<|im_start|>` `assistant` `\n`.
 */
export const PROMPT_TEMPLATE_TOKENS = 9;
/** CUDA context, cuBLAS/cuDNN workspaces and onnxruntime's own state on a GPU (an allowance, not measured here). */
export const GPU_RUNTIME_OVERHEAD_BYTES = 1.0 * 2 ** 30;
/**
 * CPU: what one onnxruntime session adds beyond its weight bytes (session state, kernels, thread
 * pool, the arena's first region). Measured with onnxruntime-node 1.30 on two decoder packages of
 * different size: the same 26 MiB for both.
 */
export const CPU_SESSION_OVERHEAD_BYTES = 26 * 2 ** 20;
/** CPU: the JS heap's working set while a job runs (V8 new/old space growth), measured: ~12 MiB. */
export const CPU_JS_HEAP_BYTES = 12 * 2 ** 20;
/** Part of an instance's nominal GPU memory a job may plan to use (driver/ECC reserve, allocator slack). */
export const GPU_USABLE_FRACTION = 0.95;

export interface PlanInput {
  /** A PlanModel, a package manifest, or a parsed Hugging Face config.json. */
  model: PlanModel | ModelPackageManifest | Record<string, unknown>;
  frames: number;
  pooling: PoolingSchedule;
  /** Prefill chunk in tokens. */
  chunk: number;
  dtype: PlanDtype;
  questionTokens?: number;
  maxNewTokens?: number;
  rope?: RopeExtension;
  /** Frames per vision-encoder batch. */
  visionBatch?: number;
  target?: PlanTarget;
  /** Attention kernel assumed for the decoder's prefill; default: materialised for fp16 on the CPU, else flash. */
  attention?: AttentionKernel;
}

export interface PhaseBudget {
  kvPast: number;
  kvPresent: number;
  attentionScores: number;
  mlp: number;
  hidden: number;
  inputs: number;
  logits: number;
  /** Freed blocks of earlier, smaller caches that the allocator arena keeps (≈ one past cache). */
  arenaSlack: number;
  total: number;
}

export interface MemoryBudget {
  weights: { vision: number; decoder: number; embeddings: number; residentDecoder: number; resident: number; fromFiles: boolean };
  kvBytesPerToken: number;
  /** Cache at the full sequence length (prompt + generated). */
  kvCache: number;
  prefill: PhaseBudget & { chunk: number; cachedBefore: number };
  decode: PhaseBudget;
  vision: { batch: number; activations: number };
  /** float32 arrays the runtime holds on the host (visual sequence, prompt embeddings). */
  host: { visualSequence: number; promptEmbeddings: number; total: number };
  overhead: number;
  /** Loading: on the CPU the weights are briefly held twice (read, then pre-packed). */
  loadPeak: number;
  peakPhase: 'load' | 'vision' | 'prefill' | 'decode';
  /** Peak for the target: device memory ('gpu') or process RSS growth ('cpu'). */
  peak: number;
}

export interface InstanceFit {
  instanceType: string;
  gpuMemoryGiB: number;
  fits: boolean;
}

export interface ScenarioPlan {
  label: string;
  pooling: PoolingSchedule;
  ropeMode: RopeMode;
  visualTokens: number;
  promptTokens: number;
  sequenceTokens: number;
  ropeScale: number;
  budget: MemoryBudget;
  fits: InstanceFit[];
}

export interface MemoryPlan {
  model: PlanModel;
  frames: number;
  dtype: PlanDtype;
  chunk: number;
  target: PlanTarget;
  attention: AttentionKernel;
  questionTokens: number;
  maxNewTokens: number;
  stock: ScenarioPlan;
  chosen: ScenarioPlan;
  /** 1 − chosen.peak / stock.peak. */
  reduction: number;
}

function toPlanModel(model: PlanInput['model']): PlanModel {
  const m = model as Record<string, unknown>;
  if (m && typeof m === 'object' && (m.source === 'package' || m.source === 'config.json') && 'text' in m && 'notes' in m) return model as PlanModel;
  if (m && m.format === 'longsight-model') return planModelFromManifest(model as ModelPackageManifest);
  return planModelFromHfConfig(model);
}

function requireInt(name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new RangeError(`${name} must be an integer ≥ ${min}, got ${v}`);
}

/** The decoder graph's token-embedding table apart from lm_head (untied checkpoints), in parameters. */
export function loopEmbeddingParams(t: PlanModel['text']): number {
  return t.tieWordEmbeddings ? 0 : t.vocabSize * t.hiddenSize;
}

/** Decoder parameters: Qwen2 layers (q/k/v with biases, o without, SwiGLU, two RMSNorms), final norm, lm_head, the loop's embedding table. */
export function decoderParams(t: PlanModel['text']): number {
  const q = t.hiddenSize * t.numHeads * t.headDim + t.numHeads * t.headDim;
  const kv = 2 * (t.hiddenSize * t.numKvHeads * t.headDim + t.numKvHeads * t.headDim);
  const o = t.numHeads * t.headDim * t.hiddenSize;
  const mlp = 3 * t.hiddenSize * t.intermediateSize;
  const perLayer = q + kv + o + mlp + 2 * t.hiddenSize;
  return t.numLayers * perLayer + t.hiddenSize + t.vocabSize * t.hiddenSize + loopEmbeddingParams(t);
}

/** Vision parameters: patch conv, position embedding, the SigLIP layers used, projector Linear–GELU–Linear. */
export function visionParams(m: PlanModel): number {
  const v = m.vision;
  const h = v.hiddenSize;
  const patches = v.gridSize * v.gridSize;
  const projector = h * m.text.hiddenSize + m.text.hiddenSize + m.text.hiddenSize * m.text.hiddenSize + m.text.hiddenSize;
  return 3 * v.patchSize * v.patchSize * h + h + patches * h + v.layersUsed * visionLayerParams(h, v.intermediateSize) + projector;
}

interface PhaseArgs {
  m: PlanModel;
  b: number;
  tokens: number;
  cachedBefore: number;
  /** Positions the job's rotary tables cover (prompt + new tokens). */
  ropePositions: number;
  attention: AttentionKernel;
  target: PlanTarget;
}

function phaseBudget({ m, b, tokens: c, cachedBefore: p, ropePositions, attention, target }: PhaseArgs): PhaseBudget {
  const t = m.text;
  const perToken = 2 * t.numLayers * t.numKvHeads * t.headDim * b;
  const total = p + c;
  const kvPast = perToken * p;
  const kvPresent = perToken * total;
  // Scores: the naive kernel holds fp32 probabilities [heads, C, P + C] for the layer being run;
  // a flash (tiled, online-softmax) kernel keeps only per-row statistics. Decode (C = 1) always
  // runs the naive path, which is small.
  const attentionScores = attention === 'materialized' || c === 1 ? t.numHeads * c * total * 4 : 2 * t.numHeads * c * 4;
  // Intermediates of one layer, as the converter builds it (container/convert/decoder-graph.ts).
  // Attention half: the fp32 residual stream (input, attention sum, MLP sum), normed input, packed
  // q/k/v plus GroupQueryAttention's BNSH and rotary copies, attention output, o_proj output. MLP
  // half: normed input, fused gate/up [C, 2I], its two Split halves, Sigmoid, SiLU and the product
  // ([C, I] each), down_proj output. onnxruntime's arenas (BFC, on CUDA and CPU) keep freed blocks
  // for reuse, and the two halves' blocks have different shapes, so the high-water mark is close to
  // their sum.
  const qkvWidth = (t.numHeads + 2 * t.numKvHeads) * t.headDim;
  const hidden = 3 * c * t.hiddenSize * 4 + c * (3 * t.hiddenSize + 3 * qkvWidth + t.numHeads * t.headDim) * b;
  const mlp = c * 7 * t.intermediateSize * b;
  // The chunk's embeddings and the job's cos/sin tables ([positions, headDim/2] each), fed every step.
  const inputs = c * t.hiddenSize * b + ropePositions * t.headDim * b;
  const logits = t.vocabSize * 4;
  // Each step's cache is a new, larger tensor; the previous one's blocks go back to the arena, which
  // keeps them but cannot place the larger cache in them: about one past cache of slack.
  const arenaSlack = kvPast;
  return {
    kvPast,
    kvPresent,
    attentionScores,
    mlp,
    hidden,
    inputs,
    logits,
    arenaSlack,
    total: kvPast + kvPresent + attentionScores + mlp + hidden + inputs + logits + arenaSlack,
  };
}

function visionActivations(m: PlanModel, batch: number, b: number): number {
  const v = m.vision;
  const n = v.gridSize * v.gridSize;
  const residual = 2 * batch * n * v.hiddenSize * 4;
  const projections = batch * n * (v.hiddenSize + 3 * v.hiddenSize + v.hiddenSize) * b;
  const scores = 2 * batch * v.numHeads * n * n * 4; // QKᵀ and its softmax (plain MatMul/Softmax graph)
  const mlp = 2 * batch * n * v.intermediateSize * b;
  const projector = 2 * batch * n * m.text.hiddenSize * 4;
  return residual + projections + scores + mlp + projector;
}

function scenario(
  label: string,
  m: PlanModel,
  args: Required<Omit<PlanInput, 'model' | 'attention'>> & { attention: AttentionKernel },
): ScenarioPlan {
  const { frames, pooling, chunk, dtype, questionTokens, maxNewTokens, rope, visionBatch, target, attention } = args;
  const b = dtype === 'fp16' ? 2 : 4;
  const t = m.text;
  const visualTokens = visualTokenCount(frames, m.vision.gridSize, pooling);
  const promptTokens = visualTokens + PROMPT_TEMPLATE_TOKENS + questionTokens;
  const sequenceTokens = promptTokens + maxNewTokens;
  const freqs = computeRopeFrequencies({
    headDim: t.headDim,
    ropeTheta: t.ropeTheta,
    rope,
    visualTokens,
    languageWindow: t.maxPositionEmbeddings,
    sequenceTokens,
  });

  const fromFiles = m.fileBytes !== undefined && m.packageDtype === dtype;
  const vision = fromFiles ? m.fileBytes!.vision : visionParams(m) * b;
  const decoder = fromFiles ? m.fileBytes!.decoder : decoderParams(t) * b;
  const embeddings = fromFiles ? m.fileBytes!.embeddings : t.vocabSize * t.hiddenSize * b;
  // On the CPU EP: an untied checkpoint's loop embedding table is gathered a row per token, mapped
  // but not resident. A tied one's single [V, H] matrix serves both the loop's Gather and lm_head's
  // Gemm: onnxruntime pre-packs the Gemm's copy and must keep the original for the Gather, so it is
  // resident twice (measured: bench:method's 0.5B-dims decoder, 633 MiB of weights, holds 1182 MiB
  // after load; 30 MiB with pre-packing off). On the GPU the weights are on the device once.
  const residentDecoder = target === 'cpu' ? decoder - loopEmbeddingParams(t) * b + (t.tieWordEmbeddings ? t.vocabSize * t.hiddenSize * b : 0) : decoder;
  const weights = { vision, decoder, embeddings, residentDecoder, resident: vision + residentDecoder, fromFiles };

  const kvBytesPerToken = 2 * t.numLayers * t.numKvHeads * t.headDim * b;
  const lastChunk = promptTokens - Math.floor((promptTokens - 1) / chunk) * chunk; // tokens in the final chunk
  const cachedBefore = promptTokens - lastChunk;
  // The last chunk sees the longest cache; when it is short, the full chunk before it can be the
  // larger one (more rows of scores and MLP), so take the worse of the two.
  let prefillPhase = { ...phaseBudget({ m, b, tokens: lastChunk, cachedBefore, ropePositions: sequenceTokens, attention, target }), chunk: lastChunk, cachedBefore };
  if (lastChunk < chunk && cachedBefore >= chunk) {
    const before = { ...phaseBudget({ m, b, tokens: chunk, cachedBefore: cachedBefore - chunk, ropePositions: sequenceTokens, attention, target }), chunk, cachedBefore: cachedBefore - chunk };
    if (before.total > prefillPhase.total) prefillPhase = before;
  }
  const decode = phaseBudget({ m, b, tokens: 1, cachedBefore: Math.max(sequenceTokens - 1, 0), ropePositions: sequenceTokens, attention, target });
  const visionBudget = { batch: Math.min(visionBatch, frames), activations: visionActivations(m, Math.min(visionBatch, frames), b) };
  const host = {
    visualSequence: visualTokens * t.hiddenSize * 4,
    promptEmbeddings: promptTokens * t.hiddenSize * 4,
    total: (visualTokens + promptTokens) * t.hiddenSize * 4,
  };
  // Two sessions (vision, decoder) on the CPU; the CUDA context and workspaces on a GPU.
  const overhead = target === 'gpu' ? GPU_RUNTIME_OVERHEAD_BYTES : 2 * CPU_SESSION_OVERHEAD_BYTES + CPU_JS_HEAP_BYTES;
  const phases = { vision: visionBudget.activations, prefill: prefillPhase.total, decode: decode.total } as const;
  let peakPhase: MemoryBudget['peakPhase'] = (Object.keys(phases) as (keyof typeof phases)[]).reduce((a, k) => (phases[k] > phases[a] ? k : a), 'prefill' as keyof typeof phases);
  let peak = weights.resident + overhead + phases[peakPhase] + (target === 'cpu' ? host.total : 0);
  // On the CPU onnxruntime reads each initializer, pre-packs it for its GEMM and then frees the
  // original, so loading briefly holds the weights twice (measured: load peak ≈ 2 × weights).
  const loadPeak = target === 'cpu' ? 2 * weights.resident + overhead : weights.resident + overhead;
  if (loadPeak > peak) {
    peak = loadPeak;
    peakPhase = 'load';
  }
  const budget: MemoryBudget = {
    weights,
    kvBytesPerToken,
    kvCache: kvBytesPerToken * sequenceTokens,
    prefill: prefillPhase,
    decode,
    vision: visionBudget,
    host,
    overhead,
    loadPeak,
    peakPhase,
    peak,
  };
  const fits = Object.entries(GPU_INSTANCE_TYPES).map(([instanceType, spec]) => ({
    instanceType,
    gpuMemoryGiB: spec.gpuMemoryGiB,
    fits: peak <= spec.gpuMemoryGiB * 2 ** 30 * GPU_USABLE_FRACTION,
  }));
  return { label, pooling, ropeMode: rope.mode, visualTokens, promptTokens, sequenceTokens, ropeScale: freqs.scale, budget, fits };
}

/**
 * What a process running only the decoder holds at its peak after loading (the measurement harness,
 * container/plan/measure-decoder.ts: one session, random projected features instead of the vision
 * tower), for the CPU target. Used to check the planner against measured RSS.
 */
export function decoderProcessPeak(budget: MemoryBudget): number {
  return budget.weights.residentDecoder + CPU_SESSION_OVERHEAD_BYTES + CPU_JS_HEAP_BYTES + Math.max(budget.prefill.total, budget.decode.total) + budget.host.total;
}

/** Plans one job: the stock pipeline (K = 1, s_h = 2, stock RoPE) beside the chosen settings. Pure. */
export function planMemory(input: PlanInput): MemoryPlan {
  const model = toPlanModel(input.model);
  requireInt('frames', input.frames, 1);
  requireInt('chunk', input.chunk, 1);
  const questionTokens = input.questionTokens ?? 32;
  const maxNewTokens = input.maxNewTokens ?? 256;
  const visionBatch = input.visionBatch ?? 8;
  requireInt('questionTokens', questionTokens, 0);
  requireInt('maxNewTokens', maxNewTokens, 0);
  requireInt('visionBatch', visionBatch, 1);
  if (input.dtype !== 'fp32' && input.dtype !== 'fp16') throw new RangeError(`dtype must be fp32 or fp16, got ${String(input.dtype)}`);
  const target = input.target ?? 'gpu';
  // onnxruntime 1.30: CUDA GroupQueryAttention runs flash attention in fp16; the CPU kernel has a
  // tiled fp32 prefill path (microsoft/onnxruntime#28962) but materialises scores for fp16.
  const attention = input.attention ?? (target === 'cpu' && input.dtype === 'fp16' ? 'materialized' : 'flash');
  const rope = input.rope ?? RopeExtensionSchema.parse({});
  const common = { frames: input.frames, chunk: input.chunk, dtype: input.dtype, questionTokens, maxNewTokens, visionBatch, target, attention };
  const stock = scenario('stock', model, { ...common, pooling: STOCK_POOLING, rope: { ...rope, mode: 'off' } });
  const chosen = scenario('chosen', model, { ...common, pooling: input.pooling, rope });
  return {
    model,
    frames: input.frames,
    dtype: input.dtype,
    chunk: input.chunk,
    target,
    attention,
    questionTokens,
    maxNewTokens,
    stock,
    chosen,
    reduction: 1 - chosen.budget.peak / stock.budget.peak,
  };
}
