/**
 * Per-environment configuration (cdk.json context `environments.<name>`), validated once at synth.
 * An absent section is parsed as `{}` (prefault), so every default is written once, on its field.
 * The Lambda and the worker receive the parts they need as JSON in an environment variable and
 * validate them again at cold start with the same schemas.
 */
import { z } from 'zod';
import { InferenceSettingsSchema } from './settings';
import { QuestionListSchema } from './questions';
import { indexProfile, type IndexProfile } from './index-profile';
import { ContractError, issuesOf } from './validate';

/** The model id an environment names when `model.id` is left out. */
export const DEFAULT_MODEL_ID = 'llava-onevision-qwen2-7b-ov';

/**
 * GPU instance types the worker image supports (NVIDIA, CUDA 12): the GPU model, its memory in GiB,
 * and the on-demand Linux price in us-east-1 (USD per instance-hour; AWS's published EC2 on-demand
 * prices as of 2026 — prices change and vary by region: `longsight plan --price TYPE=USD` overrides).
 */
export const GPU_INSTANCE_TYPES: Record<string, { gpu: GpuModel; gpuMemoryGiB: number; gpus: number; vcpus: number; memoryGiB: number; onDemandUsdPerHour: number }> = {
  'g4dn.xlarge': { gpu: 'T4', gpuMemoryGiB: 16, gpus: 1, vcpus: 4, memoryGiB: 16, onDemandUsdPerHour: 0.526 },
  'g4dn.2xlarge': { gpu: 'T4', gpuMemoryGiB: 16, gpus: 1, vcpus: 8, memoryGiB: 32, onDemandUsdPerHour: 0.752 },
  'g5.xlarge': { gpu: 'A10G', gpuMemoryGiB: 24, gpus: 1, vcpus: 4, memoryGiB: 16, onDemandUsdPerHour: 1.006 },
  'g5.2xlarge': { gpu: 'A10G', gpuMemoryGiB: 24, gpus: 1, vcpus: 8, memoryGiB: 32, onDemandUsdPerHour: 1.212 },
  'g5.4xlarge': { gpu: 'A10G', gpuMemoryGiB: 24, gpus: 1, vcpus: 16, memoryGiB: 64, onDemandUsdPerHour: 1.624 },
  'g6.xlarge': { gpu: 'L4', gpuMemoryGiB: 24, gpus: 1, vcpus: 4, memoryGiB: 16, onDemandUsdPerHour: 0.8048 },
  'g6.2xlarge': { gpu: 'L4', gpuMemoryGiB: 24, gpus: 1, vcpus: 8, memoryGiB: 32, onDemandUsdPerHour: 0.9776 },
  'g6e.xlarge': { gpu: 'L40S', gpuMemoryGiB: 48, gpus: 1, vcpus: 4, memoryGiB: 32, onDemandUsdPerHour: 1.861 },
  'g6e.2xlarge': { gpu: 'L40S', gpuMemoryGiB: 48, gpus: 1, vcpus: 8, memoryGiB: 64, onDemandUsdPerHour: 2.242 },
  'p4d.24xlarge': { gpu: 'A100-40GB', gpuMemoryGiB: 40, gpus: 8, vcpus: 96, memoryGiB: 1152, onDemandUsdPerHour: 32.773 },
  'p5.48xlarge': { gpu: 'H100-80GB', gpuMemoryGiB: 80, gpus: 8, vcpus: 192, memoryGiB: 2048, onDemandUsdPerHour: 55.04 },
};
export type GpuModel = 'T4' | 'A10G' | 'L4' | 'L40S' | 'A100-40GB' | 'H100-80GB';

/**
 * The price table in effect: USD per instance-hour for every known instance type, the built-in
 * on-demand prices above with `overrides` (an environment's `pricing.usdPerHour`: spot, savings
 * plans, another region) on top. The planner (`longsight plan --price`) and the job records
 * (`cost` on the job item) read prices through this one table.
 */
export function instancePrices(overrides: Partial<Record<string, number>> = {}): Record<string, number> {
  const table: Record<string, number> = {};
  for (const [type, spec] of Object.entries(GPU_INSTANCE_TYPES)) table[type] = spec.onDemandUsdPerHour;
  for (const [type, usd] of Object.entries(overrides)) if (usd !== undefined) table[type] = usd;
  return table;
}

/** USD per hour of one GPU of `instanceType` (instance price ÷ its GPUs: one job runs on one GPU), or undefined for an unpriced type. */
export function usdPerGpuHour(instanceType: string, prices: Record<string, number>): number | undefined {
  const usd = prices[instanceType];
  if (usd === undefined) return undefined;
  return usd / (GPU_INSTANCE_TYPES[instanceType]?.gpus ?? 1);
}

const InstanceTypeSchema = z.enum(Object.keys(GPU_INSTANCE_TYPES) as [string, ...string[]]);

const S3UriSchema = z.string().regex(/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/, 'must be an S3 URI like s3://bucket/prefix/');

export const ExtractionConfigSchema = z.strictObject({
  /** Frames sampled per video (a sidecar may override, up to 1024). */
  frames: InferenceSettingsSchema.shape.frames,
  /** Side of the square frame the model takes (LLaVA-OneVision's processor: 384). */
  imageSize: z.int().min(14).max(2048).default(384),
  /**
   * How frames are stored between the Lambda and the worker. PNG (default) is lossless: the worker
   * sees exactly the reference processor's pixels. JPEG is ~5x smaller but lossy (q95 4:4:4: most
   * values within a few levels, more at sharp edges), so the model no longer sees what the
   * reference pipeline feeds it.
   */
  format: z.enum(['jpeg', 'png']).default('png'),
  jpegQuality: z.int().min(50).max(100).default(95),
  maxBytes: z.int().min(1).default(50 * 1024 ** 3),
  maxDurationSeconds: z.number().positive().default(6 * 3600),
  maxWidth: z.int().min(16).default(7680),
  maxHeight: z.int().min(16).default(4320),
});
export type ExtractionConfig = z.infer<typeof ExtractionConfigSchema>;

export const EnvironmentConfigSchema = z.strictObject({
  account: z.string().regex(/^\d{12}$/, 'must be a 12-digit AWS account id').optional(),
  region: z.string().regex(/^[a-z]{2}(-gov)?-[a-z]+-\d$/, 'must be an AWS region like us-east-1').optional(),
  gpu: z.strictObject({
    instanceTypes: z
      .array(InstanceTypeSchema)
      .min(1)
      .default(['g5.xlarge']),
    maxWorkers: z.int().min(1).max(100).default(2),
    spot: z.boolean().default(false),
    /** Jobs one worker runs at once (one per GPU). */
    jobsPerWorker: z.int().min(1).max(8).default(1),
  }),
  extraction: ExtractionConfigSchema.prefault({}),
  lambda: z
    .strictObject({
      reservedConcurrency: z.int().min(1).max(1000).default(10),
      /** Bought for vCPUs (Lambda gives one per 1769 MB): 7076 = 4 parallel decodes. See lib/stack/extraction-function.ts. */
      memoryMiB: z.int().min(512).max(10240).default(7076),
      timeoutSeconds: z.int().min(60).max(900).default(900),
      /** Nothing is written to /tmp (the video streams through a presigned URL, frames stay in memory). */
      ephemeralStorageMiB: z.int().min(512).max(10240).default(512),
    })
    .prefault({}),
  inference: InferenceSettingsSchema.prefault({}),
  questions: QuestionListSchema.default(['Describe this video in detail.']),
  model: z.strictObject({
    /** Where the converted model package lives; the workers (only) may read it. */
    artifactUri: S3UriSchema,
    id: z.string().min(1).default(DEFAULT_MODEL_ID),
  }),
  /** Archive indexing: the backfill state machine (`longsight index --stack`) and the query side (`longsight query --stack`). */
  index: z
    .strictObject({
      /** Extractions the backfill's Distributed Map runs at once; at most lambda.reservedConcurrency (its default). */
      maxConcurrency: z.int().min(1).max(10000).optional(),
      /** Share of listed objects whose extraction may fail (after retries) before the whole backfill run fails. */
      toleratedFailurePercentage: z.number().min(0).max(100).default(5),
      /** Data one Athena query may scan before Athena cancels it (the workgroup's cutoff; Athena bills per byte scanned). */
      queryScanLimitGiB: z.number().min(0.01).max(1_000_000).default(10),
      /** Athena query results and backfill run results expire after this many days. */
      resultExpiryDays: z.int().min(1).max(3650).default(30),
    })
    .prefault({}),
  retention: z
    .strictObject({
      removalPolicy: z.enum(['destroy', 'retain']).default('retain'),
      logRetentionDays: z.union([z.literal(1), z.literal(3), z.literal(5), z.literal(7), z.literal(14), z.literal(30), z.literal(60), z.literal(90), z.literal(180), z.literal(365), z.literal(731), z.literal(1827), z.literal(3653)]).default(30),
      frameExpiryDays: z.int().min(1).max(3650).default(30),
    })
    .prefault({}),
  queue: z
    .strictObject({
      /** Visibility timeout; the worker's heartbeat extends it while a job runs. */
      visibilityTimeoutSeconds: z.int().min(30).max(43200).default(300),
      maxReceiveCount: z.int().min(1).max(10).default(3),
      oldestMessageAlarmSeconds: z.int().min(60).default(3600),
    })
    .prefault({}),
  /**
   * Prices used for the cost of each job (`status`, `answers`, `jobs`): USD per instance-hour by
   * instance type, overriding the built-in on-demand prices (GPU_INSTANCE_TYPES) for this
   * environment, e.g. its spot or savings-plan rate, or another region's price.
   */
  pricing: z
    .strictObject({
      usdPerHour: z.partialRecord(InstanceTypeSchema, z.number().min(0)).default({}),
    })
    .prefault({}),
  /** The scheduled reconciler (lambda/reconcile): re-queues or fails jobs whose message was lost, reads the DLQ. */
  reconciler: z
    .strictObject({
      /** How often it runs (EventBridge schedule). */
      scheduleMinutes: z.int().min(1).max(1440).default(5),
      /** An unfinished job unchanged this long has lost its message; must be at least twice the visibility timeout. */
      staleAfterMinutes: z.int().min(2).max(20160).default(30),
      /** Minutes after its extraction lease lapsed that a never-enqueued job is given up (Lambda retries an S3 event for up to 6 hours). */
      extractionGiveUpMinutes: z.int().min(15).max(20160).default(390),
    })
    .prefault({}),
});
export type EnvironmentConfig = z.infer<typeof EnvironmentConfigSchema>;
export type EnvironmentConfigInput = z.input<typeof EnvironmentConfigSchema>;

/**
 * Picks and validates one environment from the cdk.json `environments` context.
 * Errors name the environment, the key, and what is allowed.
 */
export function resolveEnvironment(environments: unknown, name: string | undefined): EnvironmentConfig {
  if (environments === undefined || environments === null || typeof environments !== 'object' || Array.isArray(environments)) {
    throw new ContractError('configuration', [{ path: 'environments', message: 'missing: cdk.json context must hold an "environments" object' }]);
  }
  const names = Object.keys(environments);
  if (!name) {
    throw new ContractError('configuration', [{ path: 'env', message: `no environment chosen: pass -c env=NAME, one of ${names.join(', ')}` }]);
  }
  if (!Object.prototype.hasOwnProperty.call(environments, name)) {
    throw new ContractError('configuration', [{ path: 'env', message: `unknown environment "${name}": allowed are ${names.join(', ')}` }]);
  }
  const raw = (environments as Record<string, unknown>)[name];
  const result = EnvironmentConfigSchema.safeParse(raw);
  if (!result.success) throw new ContractError('configuration', issuesOf(result.error, `environments.${name}`));
  // A job gets the frames sampled from its video: extraction.frames (or its sidecar's). An
  // inference.frames that says otherwise would be silently ignored, so it must agree or be left out.
  const config = result.data;
  const statedFrames = (raw as { inference?: { frames?: unknown } } | undefined)?.inference?.frames;
  if (statedFrames !== undefined && statedFrames !== config.extraction.frames) {
    throw new ContractError('configuration', [
      {
        path: `environments.${name}.inference.frames`,
        message: `must equal extraction.frames (${config.extraction.frames}) or be left out: the frames a job gets are those sampled per video, set with extraction.frames`,
      },
    ]);
  }
  config.inference.frames = config.extraction.frames;
  if (config.index.maxConcurrency !== undefined && config.index.maxConcurrency > config.lambda.reservedConcurrency) {
    throw new ContractError('configuration', [
      {
        path: `environments.${name}.index.maxConcurrency`,
        message: `must be at most lambda.reservedConcurrency (${config.lambda.reservedConcurrency}): more parallel extractions than the function may run would only be throttled`,
      },
    ]);
  }
  // A live job's message comes back within the visibility timeout (plus a hand-back past the lease):
  // a shorter threshold would re-send messages that are not lost.
  if (config.reconciler.staleAfterMinutes * 60 < 2 * config.queue.visibilityTimeoutSeconds) {
    throw new ContractError('configuration', [
      {
        path: `environments.${name}.reconciler.staleAfterMinutes`,
        message: `must be at least twice queue.visibilityTimeoutSeconds (${config.queue.visibilityTimeoutSeconds} s), i.e. >= ${Math.ceil((2 * config.queue.visibilityTimeoutSeconds) / 60)}`,
      },
    ]);
  }
  return config;
}

/** What the reconciler Lambda needs at run time (passed as JSON in LONGSIGHT_RECONCILER_CONFIG). */
export const ReconcilerRuntimeConfigSchema = z.strictObject({
  staleAfterSeconds: z.number().positive(),
  extractionGiveUpSeconds: z.number().positive(),
  maxAttempts: z.int().min(1),
  maxJobsPerPass: z.int().min(1).default(1000),
  maxDeadLettersPerPass: z.int().min(1).default(1000),
  deadLetterHoldSeconds: z.int().min(0).max(43200),
  /** No job lease lasts longer than this (the queue's visibility timeout): a job updated within it is live. */
  leaseSeconds: z.number().positive(),
  /** Dimensions on the JobsFailed metric it publishes (the stack's name). */
  metricDimensions: z.record(z.string(), z.string()).default({}),
});
export type ReconcilerRuntimeConfig = z.infer<typeof ReconcilerRuntimeConfigSchema>;

/** The environment's reconciler settings as the Lambda receives them. */
export function reconcilerRuntimeConfig(config: EnvironmentConfig, metricDimensions: Record<string, string> = {}): ReconcilerRuntimeConfig {
  return ReconcilerRuntimeConfigSchema.parse({
    leaseSeconds: config.queue.visibilityTimeoutSeconds,
    metricDimensions,
    staleAfterSeconds: config.reconciler.staleAfterMinutes * 60,
    extractionGiveUpSeconds: config.reconciler.extractionGiveUpMinutes * 60,
    maxAttempts: config.queue.maxReceiveCount,
    // Held past the next scheduled pass, so a DLQ larger than one pass is read in turn.
    deadLetterHoldSeconds: Math.min(43200, config.reconciler.scheduleMinutes * 60 + 60),
  });
}

/** What the extraction Lambda needs at run time (passed as JSON in LONGSIGHT_EXTRACT_CONFIG). */
export const ExtractRuntimeConfigSchema = z.strictObject({
  extraction: ExtractionConfigSchema,
  inference: InferenceSettingsSchema,
  questions: QuestionListSchema,
  /** The environment's model id: part of its index profile. */
  modelId: z.string().min(1).default(DEFAULT_MODEL_ID),
});
export type ExtractRuntimeConfig = z.infer<typeof ExtractRuntimeConfigSchema>;
export type ExtractRuntimeConfigInput = z.input<typeof ExtractRuntimeConfigSchema>;

/** The extraction Lambda's runtime configuration in an environment. */
export function extractRuntimeConfigOf(config: EnvironmentConfig): ExtractRuntimeConfig {
  return ExtractRuntimeConfigSchema.parse({
    extraction: config.extraction,
    inference: config.inference,
    questions: config.questions,
    modelId: config.model.id,
  });
}

/**
 * The index profile of an extraction configuration: its model id, the settings a job gets without a
 * sidecar (the inference settings with extraction.frames) and its standard questions.
 */
export function extractionProfile(config: ExtractRuntimeConfig): IndexProfile {
  return indexProfile({ modelId: config.modelId, settings: { ...config.inference, frames: config.extraction.frames }, questions: config.questions });
}

/** Extractions the backfill runs at once in an environment. */
export function backfillConcurrency(config: EnvironmentConfig): number {
  return config.index.maxConcurrency ?? config.lambda.reservedConcurrency;
}
