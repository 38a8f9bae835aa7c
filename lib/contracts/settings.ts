/**
 * Inference settings resolved for one job: how many frames, how frame features are pooled
 * (progressive pooling), how RoPE is extended (visual context window), and generation limits.
 * Defaults are the paper's (see DESIGN.md, "The paper's two mechanisms").
 */
import { z } from 'zod';

export const MAX_FRAMES = 1024;

/** Progressive pooling: groups of K frames; first frame of a group at stride s_h, the rest at s_l. */
export const PoolingScheduleSchema = z.strictObject({
  groupSize: z.int().min(1).max(MAX_FRAMES).describe('K: frames per group'),
  strideHigh: z.int().min(1).max(27).describe('s_h: stride of the first (detailed) frame of each group'),
  strideLow: z.int().min(1).max(27).describe('s_l: stride of the other frames of each group'),
});
export type PoolingSchedule = z.infer<typeof PoolingScheduleSchema>;

/** The paper's default schedule: K = 4, s_h = 2, s_l = 8. */
export const PAPER_POOLING: PoolingSchedule = { groupSize: 4, strideHigh: 2, strideLow: 8 };
/** The stock LLaVA-OneVision video pooling: every frame at stride 2 (14x14 = 196 tokens). */
export const STOCK_POOLING: PoolingSchedule = { groupSize: 1, strideHigh: 2, strideLow: 2 };

export const ROPE_MODES = [
  'visual-yarn', // the paper: YaRN NTK-by-parts sized by the visual context window L_v
  'language-yarn', // the paper's comparison row: YaRN sized by the text window
  'position-interpolation', // plain PI: every frequency divided by s
  'off', // stock RoPE
] as const;
export type RopeMode = (typeof ROPE_MODES)[number];

export const RopeExtensionSchema = z.strictObject({
  mode: z.enum(ROPE_MODES).default('visual-yarn'),
  /** L_v: visual tokens per sample seen in training; 0 disables the extension. */
  visualContextWindow: z.int().min(0).max(1_000_000).default(6272),
  /** Text window for 'language-yarn'; absent = the checkpoint's max_position_embeddings. */
  languageContextWindow: z.int().min(1).max(10_000_000).optional(),
  alpha: z.number().positive().default(1),
  beta: z.number().positive().default(32),
  /** 'ratio': gamma clamps (r - alpha)/(beta - alpha) (the paper); 'transformers': linear ramp in dimension index. */
  ramp: z.enum(['ratio', 'transformers']).default('ratio'),
  /** YaRN's 0.1 ln(s) + 1 attention temperature (off in the paper). */
  attentionTemperature: z.boolean().default(false),
}).refine((r) => r.beta > r.alpha, { message: 'beta must be greater than alpha', path: ['beta'] });
export type RopeExtension = z.infer<typeof RopeExtensionSchema>;

export const SamplingSchema = z.strictObject({
  /** 0 = greedy (default). */
  temperature: z.number().min(0).max(5).default(0),
  topP: z.number().gt(0).max(1).default(1),
  seed: z.int().min(0).default(0),
});

/** What the worker does when a job runs out of memory or exceeds the sequence budget: retry once with this. */
export const FallbackSchema = z.strictObject({
  pooling: PoolingScheduleSchema.optional(),
  frames: z.int().min(1).max(MAX_FRAMES).optional(),
});

export const InferenceSettingsSchema = z.strictObject({
  frames: z.int().min(1).max(MAX_FRAMES).default(64),
  pooling: PoolingScheduleSchema.default(PAPER_POOLING),
  rope: RopeExtensionSchema.prefault({}),
  maxNewTokens: z.int().min(1).max(8192).default(256),
  /** Prefill chunk in tokens: bounds activation memory. */
  prefillChunk: z.int().min(16).max(65536).default(2048),
  sampling: SamplingSchema.prefault({}),
  /** Upper bound on the decoder sequence (visual + text + generated); longer jobs take the fallback. */
  maxSequenceTokens: z.int().min(256).max(1_000_000).default(131072),
  fallback: FallbackSchema.default({ pooling: { groupSize: 8, strideHigh: 4, strideLow: 8 } }),
  /**
   * Where tokens are chosen. 'graph' (default): the decoder graph's ONNX Loop generates a whole
   * answer in one run, and only token ids leave the runtime. 'host': one run per token, the whole KV
   * cache fed in and fetched out each step (the reference path; needed for top-p < 1).
   */
  decodeLoop: z.enum(['graph', 'host']).default('graph'),
  /**
   * Time-aware prompts (LLaVA-Video's time instruction): before each question the model reads "The
   * video lasts for X seconds, and N frames are uniformly sampled from it. These frames are located
   * at t1s,t2s,…". Off by default, as in the paper.
   */
  timeAwarePrompt: z.boolean().default(false),
}).refine((s) => s.decodeLoop === 'host' || s.sampling.topP >= 1, {
  message: "top-p sampling (sampling.topP < 1) runs in the host loop only: set decodeLoop to 'host', or topP to 1",
  path: ['decodeLoop'],
});
export type InferenceSettings = z.infer<typeof InferenceSettingsSchema>;
export type InferenceSettingsInput = z.input<typeof InferenceSettingsSchema>;

export const DEFAULT_SETTINGS: InferenceSettings = InferenceSettingsSchema.parse({});
