/**
 * Where an eval's jobs run, behind one interface, so both go through the same code path:
 *  - local: what `longsight run` starts (container/local): embedded S3/SQS/DynamoDB servers, the
 *    real extraction handler invoked with the S3 event S3 would send, real worker processes, the
 *    stack's reconciler in-process;
 *  - a deployed stack (--stack NAME): its bucket, tables and queue from the stack's outputs; the
 *    upload's S3 event starts its Lambda, its GPU workers answer.
 * A job is submitted as S3 sees it: the sidecar first, then the video; the job id follows from the
 * stored object (lib/contracts/job-id).
 */
import { mkdirSync, type WriteStream } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { CopyObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createAwsClients, type AwsClients } from '../../lib/aws-clients';
import { ENV, ExtractRuntimeConfigSchema, extractionProfile, INDEX_PROFILE_OUTPUT, jobIdFor, sidecarKeyFor, type AnswerItem, type JobItem, type SidecarInput, type WorkerConfigInput } from '../../lib/contracts';
import type { Logger } from '../../lib/log';
import type { Periodic } from '../../lib/periodic';
import type { ExtractHandler } from '../../lambda/extract-frames/handler';
import { buildS3Event, type StoredObject } from '../../lambda/extract-frames/s3-event';
import { applyEnv, provisionLongsight, startEmbeddedAws, type EmbeddedAws } from '../local/embedded-aws';
import { answersOfJob, getJobs } from '../local/job-queries';
import type { ResolvedModel } from '../local/model';
import { startLocalReconciler } from '../local/reconciler';
import { resolveTarget, type Resources } from '../local/targets';
import { openRunLog } from '../local/pipeline';
import { uploadFile } from '../local/upload';
import { spawnWorkers, stopWorkers, type WorkerProcess } from '../local/worker-processes';

export interface EvalTarget {
  /** In words, for the log line: "local (1 worker)", "stack Longsight-prod". */
  readonly description: string;
  /** Uploads `sidecar` and then the video under `key`; resolves with the job id once uploaded. */
  submit(file: string, key: string, sidecar: SidecarInput): Promise<string>;
  jobs(ids: string[]): Promise<Map<string, JobItem>>;
  answers(jobId: string): Promise<AnswerItem[]>;
  /** Why a submitted video has no job and never will (local extraction ignored or failed), by job id. */
  readonly lost: Map<string, string>;
  /** Something no job will report (every local worker exited), or undefined. */
  problem(): string | undefined;
  close(): Promise<void>;
}

const CONTENT_TYPES: Record<string, string> = { '.mp4': 'video/mp4', '.m4v': 'video/mp4', '.mov': 'video/quicktime', '.mkv': 'video/x-matroska', '.webm': 'video/webm', '.avi': 'video/x-msvideo' };
const contentType = (key: string) => CONTENT_TYPES[key.slice(key.lastIndexOf('.')).toLowerCase()] ?? 'application/octet-stream';

/**
 * Puts the sidecar, then the video: uploaded once per file, copied inside the bucket for the
 * next settings (a sweep asks about the same video under several keys; a copy is an
 * ObjectCreated event too, and moves no bytes from here).
 */
function uploader(clients: AwsClients, bucket: string): (file: string, key: string, sidecar: SidecarInput) => Promise<StoredObject> {
  const uploaded = new Map<string, string>();
  return async (file, key, sidecar) => {
    await clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: sidecarKeyFor(key), Body: JSON.stringify(sidecar), ContentType: 'application/json' }));
    const first = uploaded.get(file);
    if (!first) {
      const obj = await uploadFile(clients.s3, bucket, key, file, contentType(key));
      uploaded.set(file, key);
      return obj;
    }
    await clients.s3.send(new CopyObjectCommand({ Bucket: bucket, Key: key, CopySource: `${bucket}/${encodeURIComponent(first).replace(/%2F/g, '/')}`, ContentType: contentType(key), MetadataDirective: 'REPLACE' }));
    const head = await clients.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return { bucket, key, size: head.ContentLength ?? 0, etag: head.ETag ?? '', versionId: head.VersionId };
  };
}

function queries(clients: AwsClients, r: Resources): Pick<EvalTarget, 'jobs' | 'answers'> {
  return {
    jobs: (ids) => getJobs(clients.ddb, r.jobsTable, ids),
    answers: (jobId) => answersOfJob(clients.ddb, r.answersTable, jobId),
  };
}

function destroyClients(clients: AwsClients): void {
  clients.s3.destroy();
  clients.sqs.destroy();
  clients.ddb.destroy();
}

export interface LocalTargetOptions {
  model: ResolvedModel;
  workers: number;
  /** The extraction's default frame count (every job's sidecar sets its own). */
  frames: number;
  cacheDir: string;
  /** Where the workers', the Lambda's and the reconciler's JSON logs go. */
  logFile: string;
  /** Extractions at once (S3 invokes the Lambda concurrently). */
  extractConcurrency?: number;
}

/** The local pipeline's parts, started for an eval (the same parts `longsight run` starts). */
export async function startLocalTarget(o: LocalTargetOptions): Promise<EvalTarget> {
  const visibility = 120;
  const embedded: EmbeddedAws = await startEmbeddedAws();
  const restoreEnv = applyEnv({ ...embedded.env, LONGSIGHT_LOG_LEVEL: process.env.LONGSIGHT_LOG_LEVEL ?? 'warn' });
  const clients = createAwsClients();
  let workers: WorkerProcess[] = [];
  // The run's log file, as `longsight run` keeps it: info lines from the workers, the Lambda and the reconciler.
  const runLog = openRunLog(o.cacheDir, o.logFile);
  let reconciler: Periodic | undefined;
  const stopAll = async () => {
    await reconciler?.stop();
    await stopWorkers(workers, 20_000);
    await runLog.close();
    destroyClients(clients);
    restoreEnv();
    await embedded.stop();
  };
  try {
    const r = await provisionLongsight(clients, {}, { visibilityTimeoutSeconds: visibility, maxReceiveCount: 3 });
    workers = startWorkers(o, embedded.env, r, visibility, runLog.stream);
    reconciler = startLocalReconciler(clients, r, visibility, runLog.log);
    const extract = localExtraction(clients, r, o, runLog.log);
    const upload = uploader(clients, r.bucket);
    const exited = new Set<string>();
    for (const w of workers) void w.exited.then(() => exited.add(w.id));
    return {
      description: `local (${o.workers} worker process${o.workers === 1 ? '' : 'es'}, CPU; logs ${o.logFile})`,
      ...queries(clients, r),
      lost: extract.lost,
      async submit(file, key, sidecar) {
        const obj = await upload(file, key, sidecar);
        const jobId = jobIdFor(obj, extract.profile);
        extract.enqueue(obj, jobId);
        return jobId;
      },
      problem: () => (workers.length > 0 && exited.size === workers.length ? `every worker process exited: see ${o.logFile}` : undefined),
      async close() {
        await extract.drain();
        await stopAll();
      },
    };
  } catch (e) {
    await stopAll();
    throw e;
  }
}

function startWorkers(o: LocalTargetOptions, sdkEnv: Record<string, string>, r: Resources, visibility: number, log: WriteStream): WorkerProcess[] {
  mkdirSync(join(o.cacheDir, 'run'), { recursive: true });
  const config: WorkerConfigInput = {
    jobsPerWorker: 1,
    waitTimeSeconds: 2,
    visibilityTimeoutSeconds: visibility,
    retryDelaySeconds: 5,
    stopTimeoutSeconds: 15,
    model: { dir: o.model.dir, executionProvider: 'cpu', threads: Math.max(1, Math.floor(availableParallelism() / o.workers)) },
    health: { file: join(o.cacheDir, 'run', `health-eval-${process.pid}`), intervalSeconds: 5, maxAgeSeconds: 30 },
    metrics: { enabled: false },
  };
  const env = {
    ...sdkEnv,
    [ENV.queueUrl]: r.queueUrl,
    [ENV.dlqUrl]: r.dlqUrl,
    [ENV.jobsTable]: r.jobsTable,
    [ENV.answersTable]: r.answersTable,
    [ENV.videoBucket]: r.bucket,
    [ENV.workerConfig]: JSON.stringify(config),
    [ENV.logLevel]: process.env.LONGSIGHT_LOG_LEVEL ?? 'info',
  };
  return spawnWorkers(o.workers, env, log).workers;
}

/**
 * The real extraction handler, invoked with the S3 event of each upload, a few at once, retried
 * like an asynchronous Lambda invocation (three attempts). A video it ignores, or that still fails
 * after the retries, is `lost`: no job will ever report on it.
 */
function localExtraction(clients: AwsClients, r: Resources, o: LocalTargetOptions, log: Logger) {
  const lost = new Map<string, string>();
  const pending: { obj: StoredObject; jobId: string }[] = [];
  const inFlight = new Set<Promise<void>>();
  const config = ExtractRuntimeConfigSchema.parse({
    extraction: { frames: o.frames, imageSize: o.model.manifest.vision.imageSize },
    inference: { frames: o.frames },
    questions: ['Describe this video in detail.'],
  });
  const logger = log.child({ service: 'longsight-extract-frames' });
  let handler: ExtractHandler | undefined;

  async function invoke(obj: StoredObject, jobId: string): Promise<void> {
    // Loaded on first use, as `longsight run` does (ffmpeg resolution, sharp).
    handler ??= (await import('../../lambda/extract-frames/handler')).createExtractHandler({ clients, config, jobsTable: r.jobsTable, queueUrl: r.queueUrl, logger });
    let last: unknown;
    for (let attempt = 1; attempt <= 3; attempt++) {
      try {
        const deadline = Date.now() + 15 * 60_000;
        const res = (await handler(buildS3Event(obj), { awsRequestId: `eval-${jobId}-${attempt}`, getRemainingTimeInMillis: () => deadline - Date.now() })).results[0];
        if (!res) lost.set(jobId, 'the extraction handler ignored the event');
        else if (res.outcome === 'ignored') lost.set(jobId, `ignored by the extraction handler: ${res.why}`);
        return;
      } catch (e) {
        last = e;
        await new Promise((done) => setTimeout(done, 1000 * attempt));
      }
    }
    lost.set(jobId, `extraction failed after 3 attempts: ${(last as Error).message}`);
  }

  const pump = () => {
    while (inFlight.size < (o.extractConcurrency ?? 2) && pending.length) {
      const next = pending.shift()!;
      const p: Promise<void> = invoke(next.obj, next.jobId).finally(() => {
        inFlight.delete(p);
        pump();
      });
      inFlight.add(p);
    }
  };
  return {
    lost,
    /** The job ids' index profile: this extraction's model id, settings and questions. */
    profile: extractionProfile(config).id,
    enqueue(obj: StoredObject, jobId: string) {
      pending.push({ obj, jobId });
      pump();
    },
    /** Waits for the invocations under way (pending ones are dropped: the eval is closing). */
    async drain() {
      pending.length = 0;
      while (inFlight.size) await Promise.all([...inFlight]);
    },
  };
}

/** A deployed stack: its resources from its CloudFormation outputs; its Lambda and GPU workers do the work. */
export async function connectStack(stack: string, region?: string): Promise<EvalTarget> {
  const t = await resolveTarget({ stack, region });
  const restoreEnv = applyEnv({ ...t.env, ...(region ? { AWS_REGION: region } : {}) });
  const clients = createAwsClients();
  const upload = uploader(clients, t.resources.bucket);
  // Part of every job id: the stack's index profile (model id, inference settings, questions).
  const profile = t.outputs?.[INDEX_PROFILE_OUTPUT];
  if (!profile) {
    destroyClients(clients);
    restoreEnv();
    throw new Error(`stack ${stack} has no ${INDEX_PROFILE_OUTPUT} output: deploy this version of Longsight to it first (npx cdk deploy)`);
  }
  return {
    description: `stack ${stack} (bucket ${t.resources.bucket}; its Lambda extracts, its GPU workers answer)`,
    ...queries(clients, t.resources),
    lost: new Map(),
    async submit(file, key, sidecar) {
      return jobIdFor(await upload(file, key, sidecar), profile);
    },
    problem: () => undefined,
    async close() {
      destroyClients(clients);
      restoreEnv();
    },
  };
}
