/**
 * What the local run's extraction handler runs with: the `run` options as the environment
 * configuration a stack would give its Lambda. Its index profile is part of every job id, and a
 * kept-running pipeline records it so `longsight index` hands objects to the same handler.
 */
import { ExtractRuntimeConfigSchema, type ExtractRuntimeConfig, type PoolingSchedule, type RopeMode } from '../../lib/contracts';
import type { ResolvedModel } from './model';

export interface LocalExtractOptions {
  frames: number;
  questions: string[];
  maxNewTokens?: number;
  pooling?: PoolingSchedule;
  rope?: RopeMode;
}

export function localExtractConfig(o: LocalExtractOptions, model: ResolvedModel | undefined): ExtractRuntimeConfig {
  return ExtractRuntimeConfigSchema.parse({
    extraction: { frames: o.frames, imageSize: model?.manifest.vision.imageSize ?? 384 },
    inference: {
      frames: o.frames,
      // The tiny test model's answers are noise: keep them short unless asked otherwise.
      ...(o.maxNewTokens ? { maxNewTokens: o.maxNewTokens } : model?.isTestModel ? { maxNewTokens: 32 } : {}),
      ...(o.pooling ? { pooling: o.pooling } : {}),
      ...(o.rope ? { rope: { mode: o.rope } } : {}),
    },
    questions: o.questions.length ? o.questions : ['Describe this video in detail.'],
    ...(model ? { modelId: model.manifest.modelId } : {}),
  });
}
