/**
 * `longsight run` — the whole pipeline on one machine (the README's main command):
 *   embedded S3/SQS + DynamoDB servers on free loopback ports (or LocalStack / a deployed stack),
 *   the bucket, queue (+DLQ) and tables as the stack defines them, the videos uploaded, the real
 *   extraction handler invoked with the S3 event S3 would deliver, the real worker as child
 *   processes polling the queue, and each job's answers printed as they land in DynamoDB.
 * Exits 0 when every job is DONE, 1 when any FAILED (or the run could not finish).
 */
import { existsSync, mkdirSync, statSync, type WriteStream } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { createAwsClients, type AwsClients } from '../../lib/aws-clients';
import {
  ENV,
  extractionProfile,
  INDEX_PROFILE_OUTPUT,
  isVideoKey,
  jobIdFor,
  sidecarKeyFor,
  SIDECAR_SUFFIX,
  VIDEO_SUFFIXES,
  type JobItem,
  type PoolingSchedule,
  type RopeMode,
  type WorkerConfigInput,
} from '../../lib/contracts';
import { createLogger } from '../../lib/log';
import { applyEnv, provisionLongsight, startEmbeddedAws, type EmbeddedAws } from './embedded-aws';
import { answersOfJob, getJobs } from './job-queries';
import { formatJob, jobJson } from './job-report';
import { resolveDefaultModel, TEST_MODEL_NOTICE, type ResolvedModel } from './model';
import { buildS3Event, type StoredObject as UploadedObject } from '../../lambda/extract-frames/s3-event';
import { ensureSampleVideo } from './sample-video';
import { resolveBinaries } from '../../lambda/extract-frames/binaries';
import { StatusLine } from './status-line';
import { removeLocalState, resolveTarget, writeLocalState, type Resources } from './targets';
import { uploadFile } from './upload';
import { spawnWorkers, stopWorkers, type WorkerProcess } from './worker-processes';
import { localExtractConfig } from './extract-config';
import { startLocalReconciler } from './reconciler';
import type { Periodic } from '../../lib/periodic';

export interface PipelineOptions {
  videos: string[];
  model?: string;
  workers: number;
  frames: number;
  questions: string[];
  maxNewTokens?: number;
  pooling?: PoolingSchedule;
  rope?: RopeMode;
  /** A deployed stack: upload only; its Lambda and ECS workers do the rest (unless --workers is given). */
  stack?: string;
  /** One endpoint for S3, SQS and DynamoDB (LocalStack). */
  endpoint?: string;
  region?: string;
  keepRunning?: boolean;
  timeoutSeconds?: number;
  json?: boolean;
  cacheDir?: string;
  logFile?: string;
  /** Extraction invocations at once (S3 invokes the Lambda concurrently; default 2). */
  extractConcurrency?: number;
  /** Worker queue visibility timeout (local targets). */
  visibilityTimeoutSeconds?: number;
  /** Where result lines go (stdout by default). */
  out?: NodeJS.WriteStream;
  /** Where notices and progress go (stderr by default). */
  err?: NodeJS.WriteStream;
  /** Called once the run is set up (tests use it to inject faults). */
  onReady?: (ctx: { clients: AwsClients; resources: Resources; workers: WorkerProcess[]; env: Record<string, string> }) => void;
  /** Called after the last job finished, before the servers stop (tests read the tables here). */
  inspect?: (ctx: { clients: AwsClients; resources: Resources }) => Promise<void>;
}

export interface JobSummary {
  jobId: string;
  file: string;
  key: string;
  status: 'DONE' | 'FAILED';
  reason?: string;
  answers: number;
}

export interface PipelineResult {
  exitCode: number;
  jobs: JobSummary[];
  resources?: Resources;
  wallMs: number;
}

const CONTENT_TYPES: Record<string, string> = { '.mp4': 'video/mp4', '.m4v': 'video/mp4', '.mov': 'video/quicktime', '.mkv': 'video/x-matroska', '.webm': 'video/webm', '.avi': 'video/x-msvideo' };

interface Tracked {
  file: string;
  key: string;
  jobId?: string;
  uploadedAt: number;
  status?: string;
  printed?: boolean;
  /** Extraction outcome when the Lambda did not queue a job (ignored, or errors after its retries). */
  extractError?: string;
  /** Once finished: the job's reason and how many answers it has. */
  reason?: string;
  answers?: number;
}

/** S3 keys for the local files: their base names, made unique. */
export function keysFor(files: string[]): string[] {
  const used = new Set<string>();
  return files.map((f) => {
    let key = basename(f);
    for (let i = 2; used.has(key); i++) key = `${i}-${basename(f)}`;
    used.add(key);
    return key;
  });
}

export async function runPipeline(o: PipelineOptions): Promise<PipelineResult> {
  const started = Date.now();
  const out = o.out ?? process.stdout;
  const err = o.err ?? process.stderr;
  const note = (s: string) => status.println(s, err);
  const status = new StatusLine(err);
  const cacheDir = resolve(o.cacheDir ?? '.cache');
  const remote = Boolean(o.stack);
  const runWorkersHere = o.workers > 0;
  if (!Number.isInteger(o.workers) || o.workers < 0 || o.workers > 16) throw new UsageError(`--workers must be an integer from 0 to 16, got ${o.workers}`);
  if (!remote && o.workers < 1) throw new UsageError('--workers must be at least 1 when the pipeline runs here (only a deployed --stack has workers of its own)');

  // 1. Inputs.
  let files = o.videos.map((v) => resolve(v));
  for (const f of files) {
    if (!existsSync(f) || !statSync(f).isFile()) throw new UsageError(`no such video file: ${f}`);
    if (!isVideoKey(f)) throw new UsageError(`${f}: not a video suffix Longsight extracts (${VIDEO_SUFFIXES.join(', ')})`);
  }
  if (files.length === 0) {
    note('No video given: using a generated sample (8 s test pattern, made with ffmpeg).');
    files = [await ensureSampleVideo(cacheDir)];
  }

  const media = resolveBinaries();
  if (media.notice) note(`Notice: ${media.notice}`);

  // 2. Model.
  let model: ResolvedModel | undefined;
  if (runWorkersHere) {
    model = await resolveDefaultModel({ model: o.model });
    note(model.isTestModel ? TEST_MODEL_NOTICE : `Model: ${model.manifest.modelId} (${model.dir})`);
  }

  // 3. Target.
  let embedded: EmbeddedAws | undefined;
  let restoreEnv: (() => void) | undefined;
  let clients: AwsClients | undefined;
  let workers: WorkerProcess[] = [];
  let workerLog: WriteStream | undefined;
  let reconciler: Periodic | undefined;
  const logDir = join(cacheDir, 'logs');
  mkdirSync(logDir, { recursive: true });
  const logFile = o.logFile ?? join(logDir, `run-${new Date().toISOString().replace(/[:.]/g, '-')}.log`);
  const tracked: Tracked[] = [];
  let interrupted = false;
  const onSigint = () => {
    interrupted = true;
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  try {
    let resources: Resources;
    let sdkEnv: Record<string, string>;
    let stackProfile: string | undefined;
    const visibility = o.visibilityTimeoutSeconds ?? 120;
    if (remote || o.endpoint) {
      const t = o.endpoint && !o.stack ? undefined : await resolveTarget({ stack: o.stack, region: o.region });
      sdkEnv = { ...(t?.env ?? {}), ...(o.region ? { AWS_REGION: o.region } : {}) };
      if (o.endpoint) for (const k of ['AWS_ENDPOINT_URL', 'AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL_SQS', 'AWS_ENDPOINT_URL_DYNAMODB']) sdkEnv[k] = o.endpoint;
      restoreEnv = applyEnv(sdkEnv);
      clients = createAwsClients();
      stackProfile = t?.outputs?.[INDEX_PROFILE_OUTPUT];
      if (t) resources = t.resources;
      else {
        const r = await provisionLongsight(clients, {}, { visibilityTimeoutSeconds: visibility, maxReceiveCount: 3 });
        resources = r;
      }
      note(`Target: ${o.stack ? `stack ${o.stack}` : `endpoint ${o.endpoint}`} · bucket ${resources.bucket}`);
    } else {
      embedded = await startEmbeddedAws({ region: o.region });
      sdkEnv = { ...embedded.env };
      restoreEnv = applyEnv({ ...sdkEnv, LONGSIGHT_LOG_LEVEL: process.env.LONGSIGHT_LOG_LEVEL ?? 'warn' });
      clients = createAwsClients();
      resources = await provisionLongsight(clients, {}, { visibilityTimeoutSeconds: visibility, maxReceiveCount: 3 });
      note(`Local AWS: S3+SQS ${embedded.endpoints.s3} · DynamoDB ${embedded.endpoints.dynamodb} (embedded, in memory) · logs ${logFile}`);
    }
    const c = clients;

    // 4. Workers (they load the model while the videos upload and extract).
    if (runWorkersHere && model) {
      const workerConfig: WorkerConfigInput = {
        jobsPerWorker: 1,
        waitTimeSeconds: 2,
        visibilityTimeoutSeconds: visibility,
        retryDelaySeconds: 5,
        stopTimeoutSeconds: 15,
        model: { dir: model.dir, executionProvider: 'cpu', threads: Math.max(1, Math.floor(availableParallelism() / o.workers)) },
        health: { file: join(cacheDir, 'run', `health-${process.pid}`), intervalSeconds: 5, maxAgeSeconds: 30 },
        metrics: { enabled: false },
      };
      const spawned = spawnWorkers(o.workers, {
        ...sdkEnv,
        [ENV.queueUrl]: resources.queueUrl,
        [ENV.dlqUrl]: resources.dlqUrl,
        [ENV.jobsTable]: resources.jobsTable,
        [ENV.answersTable]: resources.answersTable,
        [ENV.videoBucket]: resources.bucket,
        [ENV.workerConfig]: JSON.stringify(workerConfig),
        [ENV.logLevel]: process.env.LONGSIGHT_LOG_LEVEL ?? 'info',
      }, logFile);
      workers = spawned.workers;
      workerLog = spawned.log;
      note(`Workers: ${o.workers} local process${o.workers > 1 ? 'es' : ''} (CPU, onnxruntime) polling ${resources.queueUrl}`);
    }
    // The scheduled reconciler of the stack, in-process (local targets): stranded jobs re-queued or failed.
    if (!remote) reconciler = startLocalReconciler(c, resources, visibility, workerLog);
    o.onReady?.({ clients: c, resources, workers, env: sdkEnv });

    // The extraction's index profile (a stack's own, from its outputs) is part of every job id.
    const extractConfig = localExtractConfig(o, model);
    const profile = remote ? stackProfile : extractionProfile(extractConfig).id;
    if (!profile) throw new Error(`stack ${o.stack} has no ${INDEX_PROFILE_OUTPUT} output: deploy this version of Longsight to it first`);

    // 5. Upload (sidecar first: the Lambda reads it when the video's event arrives).
    const keys = keysFor(files);
    const uploads: { t: Tracked; obj: UploadedObject }[] = [];
    for (let i = 0; i < files.length; i++) {
      const file = files[i];
      const key = keys[i];
      const localSidecar = file.replace(/\.[^./]+$/, '') + SIDECAR_SUFFIX;
      if (existsSync(localSidecar)) {
        await uploadFile(c.s3, resources.bucket, sidecarKeyFor(key), localSidecar, 'application/json');
      }
      const ext = key.slice(key.lastIndexOf('.')).toLowerCase();
      const obj = await uploadFile(c.s3, resources.bucket, key, file, CONTENT_TYPES[ext] ?? 'application/octet-stream');
      const t: Tracked = { file, key, uploadedAt: Date.now(), jobId: jobIdFor({ bucket: obj.bucket, key: obj.key, versionId: obj.versionId, etag: obj.etag }, profile) };
      tracked.push(t);
      uploads.push({ t, obj });
      if (files.length <= 20) note(`Uploaded ${basename(file)} (${(obj.size / 1024).toFixed(0)} kB) → s3://${resources.bucket}/${key}`);
      if (files.length > 20) status.update(`uploading ${i + 1}/${files.length}`);
    }
    if (files.length > 20) note(`Uploaded ${files.length} videos → s3://${resources.bucket}/`);

    const counts = () => {
      const n = { QUEUED: 0, RUNNING: 0, DONE: 0, FAILED: 0, waiting: 0 };
      for (const t of tracked) {
        if (t.extractError) n.FAILED++;
        else if (t.status && t.status in n) n[t.status as 'QUEUED']++;
        else n.waiting++;
      }
      return n;
    };
    let extracting = '';
    const render = () => {
      const n = counts();
      status.update(`jobs ${tracked.length}: ${n.waiting ? `${n.waiting} extracting · ` : ''}${n.QUEUED} queued · ${n.RUNNING} running · ${n.DONE} done · ${n.FAILED} failed${extracting ? ` │ ${extracting}` : ''}`);
    };

    // 6. Extraction: the real handler, invoked with the event S3 would send, retried like an async Lambda invocation.
    let extraction: Promise<void> = Promise.resolve();
    if (!remote) {
      const { createExtractHandler } = await import('../../lambda/extract-frames/handler');
      const lambdaLog = createLogger({ service: 'longsight-extract-frames' }, (line) => workerLog?.write(line + '\n'));
      const handler = createExtractHandler({
        clients: c,
        config: extractConfig,
        jobsTable: resources.jobsTable,
        queueUrl: resources.queueUrl,
        logger: lambdaLog,
        onProgress: (key, done, total) => {
          extracting = `extracting ${key}: ${done}/${total} frames`;
          render();
        },
      });
      // S3 invokes the Lambda once per upload, concurrently (up to its reserved concurrency): a small pool here.
      const pending = [...uploads];
      const invokeNext = async (): Promise<void> => {
        for (let u = pending.shift(); u; u = pending.shift()) {
          const { t, obj } = u;
          if (interrupted) return;
          const event = buildS3Event(obj);
          let lastError: unknown;
          for (let attempt = 1; attempt <= 3; attempt++) {
            try {
              const deadline = Date.now() + 15 * 60_000;
              const r = await handler(event, { awsRequestId: `local-${t.jobId}-${attempt}`, getRemainingTimeInMillis: () => deadline - Date.now() });
              const res = r.results[0];
              if (!res) t.extractError = 'the extraction handler ignored the event';
              else if (res.outcome === 'ignored') t.extractError = `ignored by the extraction handler: ${res.why}`;
              else if (res.outcome === 'queued' && files.length <= 20) note(`Extracted ${res.frames} frames from ${t.key} → job ${res.jobId} queued`);
              else if (res.outcome === 'failed') t.status = 'FAILED';
              lastError = undefined;
              break;
            } catch (e) {
              lastError = e;
              await new Promise((r) => setTimeout(r, 1000 * attempt));
            }
          }
          if (lastError) t.extractError = `extraction failed after 3 attempts: ${(lastError as Error).message}`;
          render();
        }
      };
      extraction = Promise.all(Array.from({ length: Math.max(1, Math.min(o.extractConcurrency ?? 2, uploads.length)) }, invokeNext)).then(() => {
        extracting = '';
      });
    }

    // 7. Watch the jobs table until every job is DONE or FAILED.
    const deadline = o.timeoutSeconds ? Date.now() + o.timeoutSeconds * 1000 : Infinity;
    let failure: string | undefined;
    const exitedWorkers = new Set<string>();
    for (const w of workers) void w.exited.then(() => exitedWorkers.add(w.id));
    for (;;) {
      const items = await getJobs(c.ddb, resources.jobsTable, tracked.filter((t) => t.jobId && !t.printed).map((t) => t.jobId!));
      for (const t of tracked) {
        if (t.printed) continue;
        const item = t.jobId ? items.get(t.jobId) : undefined;
        if (item) t.status = item.status;
        if (t.extractError) {
          t.printed = true;
          t.status = 'FAILED';
          status.println(o.json ? JSON.stringify({ file: t.file, key: t.key, status: 'FAILED', reason: t.extractError }) : `✘ ${t.key}  FAILED: ${t.extractError}`, out);
        } else if (item && (item.status === 'DONE' || item.status === 'FAILED')) {
          t.printed = true;
          const answers = item.status === 'DONE' ? await answersOfJob(c.ddb, resources.answersTable, item.jobId) : [];
          t.answers = answers.length;
          t.reason = item.reason;
          const sinceUpload = Date.now() - t.uploadedAt;
          status.println(o.json ? jobJson(item, answers, { file: t.file, key: t.key, sinceUploadMs: sinceUpload }) : `${formatJob(item as JobItem, answers, t.key)}`, out);
        }
      }
      render();
      if (tracked.every((t) => t.printed)) break;
      if (interrupted) {
        failure = 'interrupted';
        break;
      }
      if (Date.now() > deadline) {
        failure = `timed out after ${o.timeoutSeconds} s with ${tracked.filter((t) => !t.printed).length} job(s) unfinished`;
        break;
      }
      if (workers.length > 0 && exitedWorkers.size === workers.length) {
        failure = `every worker process exited before the jobs finished: see ${logFile}`;
        break;
      }
      await new Promise((r) => setTimeout(r, tracked.length > 20 ? 500 : 250));
    }
    await extraction;
    status.done();

    const jobs: JobSummary[] = tracked.map((t) => ({
      jobId: t.jobId ?? '',
      file: t.file,
      key: t.key,
      status: t.status === 'DONE' ? 'DONE' : 'FAILED',
      reason: t.extractError ?? t.reason ?? (t.printed ? undefined : 'unfinished'),
      answers: t.answers ?? 0,
    }));
    const done = jobs.filter((j) => j.status === 'DONE').length;
    const wallMs = Date.now() - started;
    note(`${failure ? `Stopped: ${failure}. ` : ''}${jobs.length} job${jobs.length === 1 ? '' : 's'}: ${done} DONE, ${jobs.length - done} FAILED in ${(wallMs / 1000).toFixed(1)} s.`);

    await o.inspect?.({ clients: c, resources });
    if (o.keepRunning && !failure && embedded) {
      writeLocalState({ pid: process.pid, env: sdkEnv, resources, extractConfig });
      note(`Still running (Ctrl-C to stop). In another terminal: npx longsight status <jobId> · npx longsight answers <jobId> · npx longsight ask <jobId> "a question" · npx longsight index s3://${resources.bucket}/ · npx longsight query "SELECT count(*) AS n FROM answers"`);
      while (!interrupted) await new Promise((r) => setTimeout(r, 250));
      removeLocalState();
    }
    return { exitCode: failure || done < jobs.length ? 1 : 0, jobs, resources, wallMs };
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
    status.done();
    await reconciler?.stop();
    await stopWorkers(workers, 20_000);
    workerLog?.end();
    clients?.s3.destroy();
    clients?.sqs.destroy();
    clients?.ddb.destroy();
    restoreEnv?.();
    await embedded?.stop();
  }
}

/** A mistake in how the command was called: exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

