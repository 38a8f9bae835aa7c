/**
 * The planner's time and cost: how long one job takes on each GPU instance type, and what a video-hour
 * costs there, from the model's shapes, the job's token counts and the transfer ledger.
 *
 * A roofline per phase, on the GPU's vendor peak figures (dense fp16 tensor FLOP/s, memory bandwidth,
 * host link), each derated by an achievable fraction:
 *   vision  — SigLIP + projector FLOPs for every frame, compute-bound;
 *   prefill — the decoder's linear layers (2 FLOPs per weight per token) + causal attention
 *             (4·heads·headDim FLOPs per query–key pair), compute-bound;
 *   decode  — per token, the larger of moving the decoder weights + the KV cache (read by attention,
 *             and copied past → present by GroupQueryAttention) at memory bandwidth and its FLOPs at
 *             tensor rate (memory-bound at batch 1), plus a per-token launch allowance
 *             (the graph's loop: one subgraph execution, dozens of small kernels, per token);
 *   transfers — the ledger's bytes over the host link (no CUDA IO binding in onnxruntime-node).
 * These are predictions: `npm run gpu:check` measures them on a real GPU beside the planner's numbers.
 */
import { GPU_INSTANCE_TYPES, type GpuModel } from '../../lib/contracts';
import type { PlanModel } from './model-dims';
import { visionLayerParams } from './model-dims';
import type { TransferBytes } from '../runtime/transfer-ledger';

export interface GpuSpec {
  /** Dense fp16 tensor-core peak (no structured sparsity), TFLOP/s. */
  fp16Tflops: number;
  /** Device memory bandwidth, GB/s. */
  memoryGBs: number;
  /** Host↔device link, GB/s per direction (PCIe x16 of the generation the instance uses). */
  hostLinkGBs: number;
  source: string;
}

/** Vendor peak figures (dense), with where they come from. */
export const GPU_SPECS: Record<GpuModel, GpuSpec> = {
  T4: { fp16Tflops: 65, memoryGBs: 320, hostLinkGBs: 16, source: 'NVIDIA T4 Tensor Core GPU datasheet: 65 TFLOPS mixed-precision FP16, 320 GB/s GDDR6, PCIe Gen3 x16' },
  A10G: { fp16Tflops: 70, memoryGBs: 600, hostLinkGBs: 32, source: 'Baseten, "NVIDIA A10 vs A10G for ML model inference": A10G 70 TFLOPS FP16 tensor, 600 GB/s; PCIe Gen4 x16' },
  L4: { fp16Tflops: 121, memoryGBs: 300, hostLinkGBs: 32, source: 'NVIDIA L4 datasheet: 242 TFLOPS FP16 tensor with sparsity (121 dense), 300 GB/s, PCIe Gen4 x16' },
  L40S: { fp16Tflops: 362, memoryGBs: 864, hostLinkGBs: 32, source: 'NVIDIA L40S datasheet: 733 TFLOPS FP16 tensor with sparsity (362 dense), 864 GB/s, PCIe Gen4 x16' },
  'A100-40GB': { fp16Tflops: 312, memoryGBs: 1555, hostLinkGBs: 32, source: 'NVIDIA A100 datasheet (SXM4 40GB): 312 TFLOPS FP16 tensor dense, 1,555 GB/s HBM2, PCIe Gen4 to the host' },
  'H100-80GB': { fp16Tflops: 989, memoryGBs: 3350, hostLinkGBs: 64, source: 'NVIDIA H100 datasheet (SXM5): 989 TFLOPS FP16 tensor dense, 3.35 TB/s HBM3, PCIe Gen5 x16' },
};

/** Achievable fractions of peak (assumptions, shown by `plan` and checked by `gpu:check`). */
export const EFFICIENCY = {
  /** Large fp16 GEMMs (prefill, vision) under onnxruntime's CUDA EP. */
  compute: 0.5,
  /** Streaming weights and cache at batch 1 (decode). */
  memory: 0.7,
  /** Pageable host buffers over PCIe. */
  hostLink: 0.7,
};
/** Per generated token: the loop's subgraph launch and its small kernels (≈ 12 per layer at ~5 µs). */
export const DECODE_LAUNCH_SECONDS_PER_LAYER = 12 * 5e-6;

export interface JobShape {
  frames: number;
  /** Visual tokens + text tokens of the shared prefix. */
  prefixTokens: number;
  /** Each question's tokens after the prefix. */
  questionTokens: number[];
  /** Tokens each answer generates (the plan assumes max_new_tokens: an upper bound). */
  answerTokens: number;
  dtype: 'fp32' | 'fp16';
}

export interface PhaseTimes {
  visionS: number;
  prefillS: number;
  /** Time per generated token at the end of the longest answer. */
  decodeMsPerToken: number;
  decodeS: number;
  transferS: number;
  totalS: number;
}

/** FLOPs of the vision tower for one frame: patch conv, the SigLIP layers used, the projector. */
export function visionFlopsPerFrame(m: PlanModel): number {
  const v = m.vision;
  const n = v.gridSize * v.gridSize;
  const h = v.hiddenSize;
  const linear = 2 * n * (3 * v.patchSize * v.patchSize * h + v.layersUsed * (visionLayerParams(h, v.intermediateSize) - 9 * h) + h * m.text.hiddenSize + m.text.hiddenSize * m.text.hiddenSize);
  const attention = v.layersUsed * 4 * n * n * h;
  return linear + attention;
}

/** Weights of the decoder's layers (what every token multiplies by), in parameters. */
function layerParams(t: PlanModel['text']): number {
  const q = t.numHeads * t.headDim;
  const kv = t.numKvHeads * t.headDim;
  return t.numLayers * (t.hiddenSize * (q + 2 * kv) + q * t.hiddenSize + 3 * t.hiddenSize * t.intermediateSize);
}

/** FLOPs to prefill `tokens` new positions on top of `past` cached ones (causal attention). */
export function prefillFlops(t: PlanModel['text'], tokens: number, past: number): number {
  const linear = 2 * layerParams(t) * tokens;
  // Query i attends to past + i + 1 keys: Σ = tokens·past + tokens·(tokens + 1)/2 pairs, 4·heads·D FLOPs each.
  const pairs = tokens * past + (tokens * (tokens + 1)) / 2;
  return linear + t.numLayers * 4 * t.numHeads * t.headDim * pairs + 2 * t.hiddenSize * t.vocabSize;
}

/**
 * One decode step at sequence length `seq`: bytes moved in device memory and FLOPs. The weights are
 * read once; the cache three times: attention reads it, and GroupQueryAttention (without a shared
 * past/present buffer, as in the graph's loop) copies past into a one-longer present (read + write).
 */
export function decodeStep(t: PlanModel['text'], seq: number, bytesPerValue: number): { bytes: number; flops: number } {
  const weights = (layerParams(t) + t.hiddenSize * t.vocabSize) * bytesPerValue;
  const kv = 2 * t.numLayers * t.numKvHeads * t.headDim * bytesPerValue * seq;
  return { bytes: weights + 3 * kv, flops: 2 * (layerParams(t) + t.hiddenSize * t.vocabSize) + t.numLayers * 4 * t.numHeads * t.headDim * seq };
}

export function planJobTime(m: PlanModel, job: JobShape, transfers: TransferBytes, gpu: GpuSpec): PhaseTimes {
  const flopRate = gpu.fp16Tflops * 1e12 * EFFICIENCY.compute;
  const memRate = gpu.memoryGBs * 1e9 * EFFICIENCY.memory;
  const b = job.dtype === 'fp16' ? 2 : 4;
  const t = m.text;
  const visionS = (job.frames * visionFlopsPerFrame(m)) / flopRate;
  const shared = job.questionTokens.length > 1;
  let prefillFlopsTotal = shared ? prefillFlops(t, job.prefixTokens, 0) : 0;
  for (const q of job.questionTokens) prefillFlopsTotal += shared ? prefillFlops(t, q, job.prefixTokens) : prefillFlops(t, job.prefixTokens + q, 0);
  const prefillS = prefillFlopsTotal / flopRate;
  const stepSeconds = (seq: number) => {
    const s = decodeStep(t, seq, b);
    return Math.max(s.bytes / memRate, s.flops / flopRate) + DECODE_LAUNCH_SECONDS_PER_LAYER * t.numLayers;
  };
  let decodeS = 0;
  let lastStep = 0;
  for (const q of job.questionTokens) {
    const start = job.prefixTokens + q;
    // The cache grows by one a token: the mean of the first and last step is exact for a linear cost.
    const first = stepSeconds(start);
    lastStep = stepSeconds(start + job.answerTokens);
    decodeS += (job.answerTokens * (first + lastStep)) / 2;
  }
  const transferS = transfers.total / (gpu.hostLinkGBs * 1e9 * EFFICIENCY.hostLink);
  return { visionS, prefillS, decodeMsPerToken: lastStep * 1000, decodeS, transferS, totalS: visionS + prefillS + decodeS + transferS };
}

export interface InstanceEstimate {
  instanceType: string;
  gpu: GpuModel;
  times: PhaseTimes;
  usdPerHour: number;
  /** Price of one GPU-hour on the instance (instance price / GPUs): one job runs on one GPU. */
  usdPerGpuHour: number;
  usdPerVideo: number;
  usdPerVideoHour: number;
}

/**
 * Every instance type the job fits on: its phase times and what a video costs there, for a video of
 * `videoSeconds` (the frame count per video is fixed, so longer videos cost less per hour).
 */
export function planInstances(m: PlanModel, job: JobShape, transfers: TransferBytes, fits: string[], videoSeconds: number, prices: Record<string, number> = {}): InstanceEstimate[] {
  return fits.map((instanceType) => {
    const spec = GPU_INSTANCE_TYPES[instanceType];
    const times = planJobTime(m, job, transfers, GPU_SPECS[spec.gpu]);
    const usdPerHour = prices[instanceType] ?? spec.onDemandUsdPerHour;
    const usdPerGpuHour = usdPerHour / spec.gpus;
    const usdPerVideo = (times.totalS / 3600) * usdPerGpuHour;
    return { instanceType, gpu: spec.gpu, times, usdPerHour, usdPerGpuHour, usdPerVideo, usdPerVideoHour: usdPerVideo * (3600 / videoSeconds) };
  });
}
