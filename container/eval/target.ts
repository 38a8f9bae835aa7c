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
import { CopyObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createAwsClients, type AwsClients } from '../../lib/aws-clients';
import { ExtractRuntimeConfigSchema, extractionProfile, INDEX_PROFILE_OUTPUT, jobIdFor, sidecarKeyFor, type AnswerItem, type JobItem, type SidecarInput } from '../../lib/contracts';
import type { Logger } from '../../lib/log';
import type { Periodic } from '../../lib/periodic';
import type { ExtractHandler } from '../../lambda/extract-frames/handler';
import { buildS3Event, type StoredObject } from '../../lambda/extract-frames/s3-event';
import { applyEnv } from '../local/embedded-aws';
import { answersOfJob, getJobs } from '../local/job-queries';
import type { ResolvedModel } from '../local/model';
import { startLocalReconciler } from '../local/reconciler';
import { resolveTarget, type Resources } from '../local/targets';
import { destroyClients, openRunLog, startServers, startWorkers, type Workers } from '../local/pipeline';
import { uploadFile } from '../local/upload';

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

/** The local pipeline's parts, started for an eval (the same parts `longsight run` starts, by the same functions). */
export async function startLocalTarget(o: LocalTargetOptions): Promise<EvalTarget> {
  const visibility = 120;
  const servers = await startServers({ visibilityTimeoutSeconds: visibility });
  // The run's log file, as `longsight run` keeps it: info lines from the workers, the Lambda and the reconciler.
  const runLog = openRunLog(o.cacheDir, o.logFile);
  let workers: Workers | undefined;
  let reconciler: Periodic | undefined;
  const stopAll = async () => {
    await reconciler?.stop();
    await workers?.stop();
    await runLog.close();
    await servers.stop();
  };
  try {
    const { clients, resources: r } = servers;
    const started = (workers = startWorkers(servers, o.model, { count: o.workers, visibilityTimeoutSeconds: visibility, home: o.cacheDir, runLog }));
    reconciler = startLocalReconciler(clients, r, visibility, runLog.log);
    const extract = localExtraction(clients, r, o, runLog.log);
    const upload = uploader(clients, r.bucket);
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
      problem: () => (started.processes.length > 0 && started.exited.size === started.processes.length ? `every worker process exited: see ${o.logFile}` : undefined),
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
