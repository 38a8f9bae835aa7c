/**
 * The seam between the worker and the model runtime: the worker hands over a job's frames,
 * questions and resolved settings; the engine returns one answer per question plus what the job
 * item records (visual tokens, RoPE scale s, timings). The ONNX runtime implements it.
 */
import type { InferenceSettings, PoolingSchedule, Question } from '../../lib/contracts';
import type { TransferBytes } from './transfer-ledger';

export interface EngineInput {
  /** Encoded frames (JPEG/PNG bytes) in temporal order. */
  frames: Buffer[];
  questions: Question[];
  settings: InferenceSettings;
  /** When the frames were taken: the video's length and each frame's time, in seconds (time-aware prompts need them). */
  video?: { durationSeconds: number; timestamps: number[] };
  /** Called with each question's text as it streams (optional). */
  onToken?: (questionId: string, textSoFar: string) => void;
  /** Aborts between session runs (e.g. on SIGTERM). */
  signal?: AbortSignal;
  /** The job's stages as they progress (frames through the vision graph, prefill, answers). */
  onProgress?: (event: EngineProgress) => void;
}

export interface EngineProgress {
  stage: 'vision' | 'prefill' | 'decode';
  /** vision: frames encoded; prefill: 1 when the shared prefix is in the cache; decode: questions answered. */
  done: number;
  total: number;
}

export interface EngineAnswer {
  questionId: string;
  text: string;
  promptTokens: number;
  generatedTokens: number;
  latencyMs: number;
}

export interface EngineResult {
  answers: EngineAnswer[];
  /** Visual tokens as they enter the decoder (pooled frame tokens + the image_newline). */
  visualTokens: number;
  /** s = L_test / L_v applied to RoPE (1 when unchanged). */
  ropeScale: number;
  ropeMode: string;
  pooling: PoolingSchedule;
  framesUsed: number;
  timings: { frameDecodeMs: number; visionMs: number; prefillMs: number; decodeMs: number };
  /** Bytes that crossed into and out of session runs (on the CUDA EP: PCIe copies), by kind. */
  transferBytes: TransferBytes;
}

export interface AnswerEngine {
  readonly modelId: string;
  answer(input: EngineInput): Promise<EngineResult>;
  close(): Promise<void>;
}

/** Thrown before any work when the job's sequence exceeds settings.maxSequenceTokens: the worker may retry with the fallback. */
export class SequenceBudgetError extends Error {
  constructor(readonly sequenceTokens: number, readonly budget: number) {
    super(`sequence of ${sequenceTokens} tokens exceeds the configured budget of ${budget}`);
    this.name = 'SequenceBudgetError';
  }
}

/** Thrown when inference runs out of memory (onnxruntime allocation failure): the worker may retry with the fallback. */
export class OutOfMemoryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OutOfMemoryError';
  }
}
