/**
 * The worker's configuration, read once at start from the environment the stack (or the local
 * pipeline) sets: LONGSIGHT_WORKER_CONFIG (JSON, validated with WorkerConfigSchema) for behaviour,
 * and the LONGSIGHT_* location variables for the queue, the tables and the model.
 */
import { hostname } from 'node:os';
import { ENV, parseWorkerConfig, type WorkerConfig } from '../../lib/contracts';

export interface WorkerEnvironment {
  config: WorkerConfig;
  queueUrl: string;
  /** The job queue's DLQ: the worker marks jobs whose message landed there FAILED (dead-letters.ts). */
  dlqUrl?: string;
  jobsTable: string;
  answersTable: string;
  /** s3://bucket/prefix/ of the converted model package (absent when config.model.dir is set). */
  modelUri?: string;
  /** Overrides the engine's model id in the records. */
  modelId?: string;
  cacheDir: string;
  workerId: string;
}

export function loadWorkerEnvironment(env: NodeJS.ProcessEnv = process.env): WorkerEnvironment {
  const raw = env[ENV.workerConfig];
  let json: unknown = {};
  if (raw) {
    try {
      json = JSON.parse(raw);
    } catch (e) {
      throw new Error(`${ENV.workerConfig} is not valid JSON: ${(e as Error).message}`);
    }
  }
  const config = parseWorkerConfig(json);
  const need = (name: string): string => {
    const v = env[name];
    if (!v) throw new Error(`the worker needs ${name} (set by the stack, or by \`longsight run\` locally)`);
    return v;
  };
  const modelUri = env[ENV.modelUri] || undefined;
  if (!config.model.dir && !modelUri) {
    throw new Error(`the worker needs a model: set ${ENV.modelUri} to the package's S3 URI, or model.dir in ${ENV.workerConfig}`);
  }
  if (modelUri && !/^s3:\/\/[^/]+(\/.*)?$/.test(modelUri)) throw new Error(`${ENV.modelUri} must be an S3 URI like s3://bucket/prefix/, got "${modelUri}"`);
  return {
    config,
    queueUrl: need(ENV.queueUrl),
    dlqUrl: env[ENV.dlqUrl] || undefined,
    jobsTable: need(ENV.jobsTable),
    answersTable: need(ENV.answersTable),
    modelUri,
    modelId: env[ENV.modelId] || undefined,
    cacheDir: env[ENV.modelCacheDir] || config.model.cacheDir,
    workerId: env.LONGSIGHT_WORKER_ID || `${hostname()}-${process.pid}`,
  };
}

/** The heartbeat period and the lease derived from it (see job-store.ts). */
export function timingOf(config: WorkerConfig): { heartbeatMs: number; leaseMs: number } {
  const visibilityMs = config.visibilityTimeoutSeconds * 1000;
  const heartbeatMs = (config.heartbeatSeconds ?? config.visibilityTimeoutSeconds / 3) * 1000;
  // A live owner refreshes within heartbeatMs; a dead owner's message only returns after the full
  // visibility timeout: a lease halfway between tells the two apart.
  return { heartbeatMs, leaseMs: (heartbeatMs + visibilityMs) / 2 };
}
