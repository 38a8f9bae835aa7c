/**
 * What `longsight index --dry-run` predicts for the jobs it would make: frames, and the GPU time and
 * cost `longsight plan` computes (container/plan/job-plan.ts) for the profile's settings, questions
 * and the environment's GPU instance type at its on-demand price (GPU_INSTANCE_TYPES). A job's
 * frame count is fixed, so its cost does not depend on the video's length.
 */
import * as path from 'node:path';
import type { InferenceSettings } from '../../lib/contracts';
import { planJob } from '../plan/job-plan';
import { loadPlanModel } from '../plan/model-dims';

/** The model `--dry-run` prices with unless `--model` names another: the 7B the stacks run. */
export const DEFAULT_PLAN_MODEL = path.resolve(__dirname, '..', 'plan', 'models', 'llava-onevision-qwen2-7b-ov.config.json');

export interface CostPrediction {
  jobs: number;
  framesPerJob: number;
  instanceType: string;
  /** Upper bound: every answer runs to max new tokens. */
  gpuSecondsPerJob?: number;
  usdPerJob?: number;
  totalUsd?: number;
  totalGpuHours?: number;
  /** Set when the job does not fit on `instanceType`: the types it fits on. */
  doesNotFit?: string[];
}

export interface CostInput {
  jobs: number;
  settings: InferenceSettings;
  questions: number;
  /** The GPU instance type the jobs would run on (the environment's first). */
  instanceType: string;
  /** A model package or config.json (default: DEFAULT_PLAN_MODEL). */
  model?: string;
}

export function predictCost(input: CostInput): CostPrediction {
  const s = input.settings;
  const plan = planJob({
    model: loadPlanModel(input.model ?? DEFAULT_PLAN_MODEL),
    frames: s.frames,
    pooling: s.pooling,
    chunk: s.prefillChunk,
    dtype: 'fp16',
    questionTokens: 32,
    maxNewTokens: s.maxNewTokens,
    rope: s.rope,
    visionBatch: 8,
    target: 'gpu',
    questions: input.questions,
  });
  const base = { jobs: input.jobs, framesPerJob: s.frames, instanceType: input.instanceType };
  const on = plan.costs.chosen.instances.find((i) => i.instanceType === input.instanceType);
  if (!on) return { ...base, doesNotFit: plan.costs.chosen.instances.map((i) => i.instanceType) };
  return {
    ...base,
    gpuSecondsPerJob: on.times.totalS,
    usdPerJob: on.usdPerVideo,
    totalUsd: on.usdPerVideo * input.jobs,
    totalGpuHours: (on.times.totalS * input.jobs) / 3600,
  };
}
