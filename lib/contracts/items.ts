/**
 * DynamoDB items. Two tables:
 *  - jobs:    pk `jobId`; GSI `byStatus` (status, updatedAt) lists jobs by status;
 *             GSI `byVideo` (videoUri, createdAt) finds a video's jobs.
 *  - answers: pk `jobId`, sk `questionId`: one Query returns a job's answers;
 *             GSI `byVideo` (videoUri, answeredAt) returns every answer about one video in one Query.
 */
import { z } from 'zod';
import { JOB_ID_PATTERN } from './job-id';
import { PROFILE_ID_PATTERN } from './index-profile';
import { QuestionSchema } from './questions';
import { InferenceSettingsSchema, PoolingScheduleSchema } from './settings';
import { VideoRefSchema } from './job-message';

export const JOBS_TABLE_KEYS = {
  partitionKey: 'jobId',
  byStatus: { indexName: 'byStatus', partitionKey: 'status', sortKey: 'updatedAt' },
  byVideo: { indexName: 'byVideo', partitionKey: 'videoUri', sortKey: 'createdAt' },
} as const;

export const ANSWERS_TABLE_KEYS = {
  partitionKey: 'jobId',
  sortKey: 'questionId',
  byVideo: { indexName: 'byVideo', partitionKey: 'videoUri', sortKey: 'answeredAt' },
} as const;

export const JOB_STATUSES = ['QUEUED', 'RUNNING', 'DONE', 'FAILED'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
/** A finished job is never overwritten by a retried or duplicated delivery. */
export const TERMINAL_STATUSES: readonly JobStatus[] = ['DONE', 'FAILED'];

const ms = z.number().min(0);
export const TimingsSchema = z.strictObject({
  extractMs: ms.optional(),
  queueWaitMs: ms.optional(),
  frameLoadMs: ms.optional(),
  visionMs: ms.optional(),
  prefillMs: ms.optional(),
  decodeMs: ms.optional(),
  totalMs: ms.optional(),
});
export type Timings = z.infer<typeof TimingsSchema>;

/** Bytes that crossed into and out of the runtime's session runs for a job (on the CUDA EP: PCIe copies). */
export const TRANSFER_KINDS = ['pixels', 'visionOut', 'embeddings', 'kvIn', 'kvOut', 'logits', 'tokenIds', 'logprobs', 'rotary', 'control'] as const;
const bytes = z.number().min(0);
export const TransferBytesSchema = z.strictObject({
  total: bytes,
  /** Marginal bytes of one more generated token (what grows with each token, beyond the once-per-question inputs). */
  perGeneratedToken: bytes,
  byKind: z.strictObject(Object.fromEntries(TRANSFER_KINDS.map((k) => [k, bytes])) as Record<(typeof TRANSFER_KINDS)[number], typeof bytes>),
});
export type TransferBytesRecord = z.infer<typeof TransferBytesSchema>;

/** What the worker is doing while a job is RUNNING: frames from S3, then the engine's stages. */
export const JOB_STAGES = ['frames', 'vision', 'prefill', 'decode'] as const;
export type JobStage = (typeof JOB_STAGES)[number];

/**
 * The running job's progress, written by its worker at a bounded rate (and removed when the job
 * leaves RUNNING). `fraction` and `etaSeconds` are the worker's estimate for the whole job.
 */
export const JobProgressSchema = z.strictObject({
  stage: z.enum(JOB_STAGES),
  /** frames: frames loaded; vision: frames encoded; prefill: the video's prefix (0/1); decode: questions answered. */
  done: z.int().min(0),
  total: z.int().min(0),
  /** Share of the job's work done, 0–1 (stages weighted by the planner's time model). */
  fraction: z.number().min(0).max(1),
  /** Seconds left as estimated when written; absent until there is something to estimate from. */
  etaSeconds: z.number().min(0).optional(),
  /** When it was written (`etaSeconds` counts from here). */
  at: z.iso.datetime(),
});
export type JobProgress = z.infer<typeof JobProgressSchema>;

/**
 * What a finished job cost: the seconds it held its worker (claim to answers written: the GPU, or
 * the CPU of a local run, does nothing else meanwhile) × the hourly price of one GPU of the
 * instance it ran on, from the price table in effect then (lib/contracts/env-config.ts,
 * overridable per environment). No price is recorded when the instance type is unknown or local.
 */
export const JobCostSchema = z.strictObject({
  seconds: z.number().min(0),
  device: z.enum(['gpu', 'cpu']),
  /** An EC2 instance type, or "local" for `longsight run` on this machine. */
  instanceType: z.string().min(1).optional(),
  /** USD per hour of one GPU on that instance (instance price ÷ its GPUs: one job runs on one GPU). */
  usdPerHour: z.number().min(0).optional(),
  usd: z.number().min(0).optional(),
});
export type JobCost = z.infer<typeof JobCostSchema>;

export const JobItemSchema = z.strictObject({
  jobId: z.string().regex(JOB_ID_PATTERN),
  videoUri: z.string().startsWith('s3://'),
  video: VideoRefSchema,
  status: z.enum(JOB_STATUSES),
  /** The index profile whose id is part of the job id (absent on `ask` jobs and jobs made before profiles). */
  profile: z.string().regex(PROFILE_ID_PATTERN).optional(),
  /** Why a job FAILED, in words a person understands. */
  reason: z.string().max(2000).optional(),
  /** Deliveries the worker has started (1 on the first run). */
  attempts: z.int().min(0),
  /** Job messages the reconciler sent again after the job's own message was lost. */
  resends: z.int().min(0).optional(),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
  frames: z
    .strictObject({
      count: z.int().min(0),
      manifestKey: z.string(),
      durationSeconds: z.number().min(0).optional(),
    })
    .optional(),
  questions: z.array(QuestionSchema),
  settings: InferenceSettingsSchema,
  timings: TimingsSchema.default({}),
  tokens: z
    .strictObject({
      visual: z.int().min(0),
      prompt: z.int().min(0),
      generated: z.int().min(0),
    })
    .optional(),
  /** s = L_test / L_v as applied to RoPE (1 when unchanged). */
  ropeScale: z.number().positive().optional(),
  ropeMode: z.string().optional(),
  poolingUsed: PoolingScheduleSchema.optional(),
  framesUsed: z.int().min(1).optional(),
  transferBytes: TransferBytesSchema.optional(),
  /** The running job's stage, share done and ETA (RUNNING only). */
  progress: JobProgressSchema.optional(),
  /** Measured worker seconds and their price (DONE jobs). */
  cost: JobCostSchema.optional(),
  /** Timestamps of the first and last frame the model saw, seconds into the video (DONE jobs). */
  frameSpan: z.strictObject({ firstSeconds: z.number().min(0), lastSeconds: z.number().min(0) }).optional(),
  /** Set when the worker retried with the fallback settings, with what it ran out of. */
  fallback: z.string().optional(),
  modelId: z.string().optional(),
  workerId: z.string().optional(),
  /** Token of the delivery that owns the RUNNING job: conditional writes check it. */
  runToken: z.string().optional(),
  /** When the extraction Lambda sent the job message (absent while extraction is under way or if it crashed before sending). */
  enqueuedAt: z.iso.datetime().optional(),
  /**
   * The extraction attempt that owns a not-yet-enqueued job, until `until`: a duplicated or
   * concurrent S3 event finds it held and does nothing; a retry after a crash takes over once it lapses.
   */
  extractLease: z.strictObject({ token: z.string().min(1), until: z.iso.datetime() }).optional(),
});
export type JobItem = z.infer<typeof JobItemSchema>;

export const AnswerItemSchema = z.strictObject({
  jobId: z.string().regex(JOB_ID_PATTERN),
  questionId: QuestionSchema.shape.id,
  videoUri: z.string().startsWith('s3://'),
  question: z.string(),
  answer: z.string(),
  tokens: z.strictObject({ prompt: z.int().min(0), generated: z.int().min(0) }),
  latencyMs: ms,
  answeredAt: z.iso.datetime(),
  /** When each frame the model saw was taken (seconds from the start), to relate the answer to moments in the video. */
  frameTimestamps: z.array(z.number().min(0)).optional(),
  modelId: z.string(),
  runToken: z.string().optional(),
});
export type AnswerItem = z.infer<typeof AnswerItemSchema>;
