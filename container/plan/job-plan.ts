/**
 * What `longsight plan` shows for one job: the memory plan (memory.ts) and, for the stock pipeline
 * and the chosen settings, the transfer ledger (transfers.ts: the runtime's own accounting replayed
 * from shapes, for the graph's token loop and for the host loop) and the time and cost on every
 * instance type the job fits on (time.ts). Pure.
 */
import type { TransferBytes } from '../runtime/transfer-ledger';
import { planMemory, PROMPT_TEMPLATE_TOKENS, type MemoryPlan, type PlanInput, type ScenarioPlan } from './memory';
import { planInstances, type InstanceEstimate, type JobShape } from './time';
import { planTransfers } from './transfers';

/** `<|im_start|>user\n<video>\n`: the shared prefix's text tokens besides the video. */
export const PREFIX_TEXT_TOKENS = 4;
/** Stop ids the loop checks (`<|im_end|>`, `<|endoftext|>`). */
const STOP_IDS = 2;

export interface JobPlanInput extends PlanInput {
  /** Questions asked of the video (they share its prefill). */
  questions?: number;
  /** Tokens each answer generates; default max_new_tokens (an upper bound). */
  answerTokens?: number;
  /** Length of the video, for the cost per video-hour (frames per video are fixed). */
  videoSeconds?: number;
  /** USD per instance-hour, overriding the built-in on-demand prices. */
  prices?: Record<string, number>;
}

export interface ScenarioCost {
  /** Bytes across session runs with the graph's token loop (the default). */
  transfers: TransferBytes;
  /** The same job through the host loop (settings.decodeLoop 'host'), for comparison. */
  hostLoopTransfers: TransferBytes;
  instances: InstanceEstimate[];
}

export interface JobPlan extends MemoryPlan {
  questions: number;
  answerTokens: number;
  videoSeconds: number;
  costs: { stock: ScenarioCost; chosen: ScenarioCost };
}

function scenarioCost(plan: MemoryPlan, s: ScenarioPlan, input: JobPlanInput, questions: number, answerTokens: number, videoSeconds: number): ScenarioCost {
  const m = plan.model;
  const prefixTokens = s.visualTokens + PREFIX_TEXT_TOKENS;
  const rest = PROMPT_TEMPLATE_TOKENS - PREFIX_TEXT_TOKENS + plan.questionTokens;
  const shape = {
    text: m.text,
    vision: m.vision,
    dtype: plan.dtype,
    frames: plan.frames,
    pooling: s.pooling,
    visionBatch: input.visionBatch ?? 8,
    prefixTokens,
    questionTokens: Array.from({ length: questions }, () => rest),
    ropePositions: s.sequenceTokens,
    generatedTokens: Array.from({ length: questions }, () => answerTokens),
    stopIds: STOP_IDS,
  };
  const transfers = planTransfers({ ...shape, decodeLoop: 'graph' });
  const hostLoopTransfers = planTransfers({ ...shape, decodeLoop: 'host' });
  const job: JobShape = { frames: plan.frames, prefixTokens, questionTokens: shape.questionTokens, answerTokens, dtype: plan.dtype };
  const fits = s.fits.filter((f) => f.fits).map((f) => f.instanceType);
  return { transfers, hostLoopTransfers, instances: planInstances(m, job, transfers, fits, videoSeconds, input.prices) };
}

export function planJob(input: JobPlanInput): JobPlan {
  const plan = planMemory(input);
  const questions = input.questions ?? 1;
  const answerTokens = input.answerTokens ?? plan.maxNewTokens;
  const videoSeconds = input.videoSeconds ?? 3600;
  if (!Number.isInteger(questions) || questions < 1) throw new RangeError(`questions must be an integer ≥ 1, got ${questions}`);
  if (!Number.isInteger(answerTokens) || answerTokens < 0 || answerTokens > plan.maxNewTokens) throw new RangeError(`answer tokens must be an integer from 0 to max new tokens (${plan.maxNewTokens}), got ${answerTokens}`);
  if (!(videoSeconds > 0)) throw new RangeError(`video length must be positive, got ${videoSeconds}`);
  return {
    ...plan,
    questions,
    answerTokens,
    videoSeconds,
    costs: {
      stock: scenarioCost(plan, plan.stock, input, questions, answerTokens, videoSeconds),
      chosen: scenarioCost(plan, plan.chosen, input, questions, answerTokens, videoSeconds),
    },
  };
}
