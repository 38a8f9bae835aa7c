/**
 * Names of the environment variables through which the stack (or the local pipeline) tells the
 * Lambda and the worker where things are. One list, so both sides agree.
 */
export const ENV = {
  /** JSON of ExtractRuntimeConfig (extraction limits, default inference settings, default questions). */
  extractConfig: 'LONGSIGHT_EXTRACT_CONFIG',
  /** JSON of ReconcilerRuntimeConfig (the scheduled reconciler's thresholds). */
  reconcilerConfig: 'LONGSIGHT_RECONCILER_CONFIG',
  /** JSON of WorkerConfig. */
  workerConfig: 'LONGSIGHT_WORKER_CONFIG',
  jobsTable: 'LONGSIGHT_JOBS_TABLE',
  answersTable: 'LONGSIGHT_ANSWERS_TABLE',
  queueUrl: 'LONGSIGHT_QUEUE_URL',
  dlqUrl: 'LONGSIGHT_DLQ_URL',
  videoBucket: 'LONGSIGHT_VIDEO_BUCKET',
  modelUri: 'LONGSIGHT_MODEL_URI',
  modelId: 'LONGSIGHT_MODEL_ID',
  modelCacheDir: 'LONGSIGHT_MODEL_CACHE',
  /** Paths of the ffmpeg/ffprobe binaries (the Lambda layer's /opt/bin; locally the npm-shipped ones). */
  ffmpegPath: 'FFMPEG_PATH',
  ffprobePath: 'FFPROBE_PATH',
  logLevel: 'LONGSIGHT_LOG_LEVEL',
} as const;

/** A JSON configuration variable, parsed; errors name the variable ("X is not set: <why needed>", "X is not valid JSON: …"). */
export function jsonFromEnv(env: NodeJS.ProcessEnv, name: string, needed: string): unknown {
  const raw = env[name];
  if (!raw) throw new Error(`${name} is not set: ${needed}`);
  try {
    return JSON.parse(raw);
  } catch (e) {
    throw new Error(`${name} is not valid JSON: ${(e as Error).message}`);
  }
}
