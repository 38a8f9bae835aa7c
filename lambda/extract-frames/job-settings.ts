/**
 * What one job runs with: the environment's defaults, overridden by the video's sidecar.
 * Pure; validated with the contracts' schemas.
 */
import type { ExtractRuntimeConfig } from '../../lib/contracts/env-config';
import { mergeQuestions, type Question, type Sidecar } from '../../lib/contracts/questions';
import { InferenceSettingsSchema, type InferenceSettings } from '../../lib/contracts/settings';
import { PermanentInputError } from './failure-reasons';

export interface JobPlan {
  /** Frames to sample (the sidecar's `frames`, else the environment's extraction.frames). */
  frames: number;
  questions: Question[];
  settings: InferenceSettings;
}

export function planJob(config: ExtractRuntimeConfig, sidecar?: Sidecar, sidecarKey = 'sidecar'): JobPlan {
  const frames = sidecar?.frames ?? config.extraction.frames;
  let questions: Question[];
  try {
    questions = mergeQuestions(sidecar?.defaultQuestions === false ? [] : config.questions, sidecar?.questions ?? []);
  } catch (e) {
    throw new PermanentInputError(`${sidecarKey}: ${(e as Error).message}`);
  }
  if (questions.length === 0) throw new PermanentInputError(`${sidecarKey}: defaultQuestions is false and the sidecar asks no questions`);
  const settings = InferenceSettingsSchema.parse({
    ...config.inference,
    frames,
    ...(sidecar?.pooling ? { pooling: sidecar.pooling } : {}),
    ...(sidecar?.rope ? { rope: sidecar.rope } : {}),
    ...(sidecar?.maxNewTokens ? { maxNewTokens: sidecar.maxNewTokens } : {}),
    ...(sidecar?.sampling ? { sampling: sidecar.sampling } : {}),
    ...(sidecar?.timeAwarePrompt !== undefined ? { timeAwarePrompt: sidecar.timeAwarePrompt } : {}),
  });
  return { frames, questions, settings };
}
