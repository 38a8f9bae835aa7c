/**
 * The GPU worker's configuration: passed by the stack (or the local pipeline) as JSON in
 * LONGSIGHT_WORKER_CONFIG and validated once at start. Where things are (queue URL, tables, model
 * URI) comes in the separate LONGSIGHT_* variables of runtime-env.ts; this says how the worker
 * behaves. Every key has a default, so `{}` is a valid configuration.
 */
import { z } from 'zod';
import { parseOrThrow } from './validate';

/** CloudWatch namespace of the worker's custom metrics (published as EMF log lines). */
export const METRICS_NAMESPACE = 'Longsight';

/**
 * Metric names the worker publishes and the stack's dashboard and alarms read. Each carries the
 * dimensions in metrics.dimensions (the stack sets `Stack` = its stack name, so dev and prod in one
 * account stay apart).
 */
export const WORKER_METRICS = {
  /** Count, 1 per job that ended DONE. */
  jobsDone: 'JobsDone',
  /** Count, 1 per job that ended FAILED. */
  jobsFailed: 'JobsFailed',
  /** Milliseconds from the job message being received to the job item written DONE. */
  jobLatencyMs: 'JobLatencyMs',
} as const;

export const WorkerConfigSchema = z
  .strictObject({
    /** Jobs one worker process runs at once (one GPU per worker). */
    jobsPerWorker: z.int().min(1).max(8).default(1),
    /** SQS long-poll wait per ReceiveMessage call (0–20 s). */
    waitTimeSeconds: z.int().min(0).max(20).default(20),
    /** The queue's visibility timeout; the heartbeat extends a running job's message well before it lapses. */
    visibilityTimeoutSeconds: z.int().min(1).max(43200).default(300),
    /** Heartbeat period; absent = a third of the visibility timeout. */
    heartbeatSeconds: z.number().positive().max(43200).optional(),
    /** Deliveries before SQS moves a message to the DLQ: the worker marks the job FAILED on the last one. */
    maxReceiveCount: z.int().min(1).max(1000).default(3),
    /**
     * How often (seconds) the worker looks into the DLQ (LONGSIGHT_DLQ_URL, without taking its
     * messages) for jobs whose every delivery died mid-job and marks them FAILED; 0 turns it off.
     */
    deadLetterSweepSeconds: z.number().min(0).max(86400).default(60),
    /** Visibility (seconds) a transiently failed job's message gets before it is retried. */
    retryDelaySeconds: z.int().min(0).max(43200).default(30),
    /** Seconds ECS waits after SIGTERM before SIGKILL: finish or release the current job within it. */
    stopTimeoutSeconds: z.number().positive().max(120).default(120),
    /** How long the final DynamoDB writes are retried (throttling, unavailability) before the job is given back. */
    finalWriteRetrySeconds: z.number().positive().max(3600).default(120),
    /** At most one write of a running job's progress (stage, share done, ETA) per this many seconds. */
    progressIntervalSeconds: z.number().min(0.05).max(3600).default(2),
    /** Frames fetched from S3 in parallel. */
    frameFetchConcurrency: z.int().min(1).max(256).default(16),
    model: z
      .strictObject({
        /** A converted model package already on local disk (skips the S3 download). */
        dir: z.string().min(1).optional(),
        /** Where the package from LONGSIGHT_MODEL_URI is downloaded to (LONGSIGHT_MODEL_CACHE overrides). */
        cacheDir: z.string().min(1).default('/var/cache/longsight/model'),
        /** onnxruntime execution provider: 'cuda' in the GPU image (ECS exposes the task's GPU as device 0), 'cpu' locally. */
        executionProvider: z.enum(['cpu', 'cuda']).default('cuda'),
        /** onnxruntime intra-op threads (0 = onnxruntime's default: all cores). */
        threads: z.int().min(0).max(256).default(0),
      })
      .prefault({}),
    health: z
      .strictObject({
        /** File the worker rewrites while alive; the ECS health check (health.js) reads its age. */
        file: z.string().min(1).default('/tmp/longsight-worker.health'),
        intervalSeconds: z.number().positive().max(300).default(10),
        /** The health check fails when the file is older than this. */
        maxAgeSeconds: z.number().positive().max(3600).default(60),
      })
      .prefault({}),
    /** The answers export (index/…/<jobId>.jsonl in the video's bucket): one line per answer of every finished job. */
    export: z
      .strictObject({
        /** cost_usd is the job's cost (pricing below) split over its answers. */
        enabled: z.boolean().default(true),
      })
      .prefault({}),
    /**
     * What a job's cost is computed from: the instance type the worker runs on (given, read from
     * a file the instance's user data writes, or the only type in the table) and the price table
     * (USD per instance-hour; GPU_INSTANCE_TYPES says how many GPUs share it). Locally: "local",
     * no prices (the CPU seconds are recorded, unpriced).
     */
    pricing: z
      .strictObject({
        instanceType: z.string().min(1).optional(),
        /** A file holding the instance type (the stack's user data writes it from the instance metadata). */
        instanceTypeFile: z.string().min(1).optional(),
        usdPerHour: z.record(z.string(), z.number().min(0)).default({}),
      })
      .prefault({}),
    metrics: z
      .strictObject({
        namespace: z.string().min(1).default(METRICS_NAMESPACE),
        /** Dimensions on every metric, e.g. { Stack: "Longsight-prod" }. */
        dimensions: z.record(z.string(), z.string()).default({}),
        /** EMF lines on stdout (off in tests that read stdout). */
        enabled: z.boolean().default(true),
      })
      .prefault({}),
  })
  .refine((c) => (c.heartbeatSeconds ?? c.visibilityTimeoutSeconds / 3) < c.visibilityTimeoutSeconds, {
    message: 'heartbeatSeconds must be shorter than visibilityTimeoutSeconds',
    path: ['heartbeatSeconds'],
  });
export type WorkerConfig = z.infer<typeof WorkerConfigSchema>;
export type WorkerConfigInput = z.input<typeof WorkerConfigSchema>;

export function parseWorkerConfig(value: unknown): WorkerConfig {
  return parseOrThrow(WorkerConfigSchema, value, 'worker configuration');
}
