/**
 * `longsight run` — the whole pipeline on one machine (the README's main command), as its stages:
 *
 *   resolveInputs   the videos (files, folders) or a generated sample
 *   resolveModel    the converted package the workers load
 *   openRunLog      the run's log file: the Lambda's, the reconciler's and the workers' JSON lines
 *   startServers    embedded S3/SQS + DynamoDB on free loopback ports (or LocalStack / a deployed
 *                   stack), with the bucket, queue (+DLQ) and tables as the stack defines them
 *   startWorkers    the real worker, as child processes polling the queue
 *   uploadVideos    each video (its sidecar first) through the SDK
 *   startExtraction the real extraction handler, invoked with the S3 event S3 would deliver
 *   watchJobs       the jobs table polled until every job is DONE or FAILED, each printed as it lands
 *   keepInHistory   the finished jobs and answers kept in the local history (`longsight jobs`)
 *
 * Each stage is exported for other commands that drive the same pieces (an evaluation harness, an
 * indexer); runPipeline composes them. Exits 0 when every job is DONE, 1 when any FAILED (or the
 * run could not finish).
 */
import { createWriteStream, existsSync, mkdirSync, type WriteStream } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { createAwsClients, type AwsClients } from '../../lib/aws-clients';
import {
  ENV,
  extractionProfile,
  INDEX_PROFILE_OUTPUT,
  jobIdFor,
  sidecarKeyFor,
  SIDECAR_SUFFIX,
  type AnswerItem,
  type ExtractRuntimeConfig,
  type JobItem,
  type PoolingSchedule,
  type RopeMode,
  type WorkerConfigInput,
} from '../../lib/contracts';
import { createLogger, type Logger } from '../../lib/log';
import type { Periodic } from '../../lib/periodic';
import { resolveBinaries } from '../../lambda/extract-frames/binaries';
import { buildS3Event, type StoredObject as UploadedObject } from '../../lambda/extract-frames/s3-event';
import { applyEnv, provisionLongsight, startEmbeddedAws, type EmbeddedAws } from './embedded-aws';
import { withHistory, recordJobs } from './history';
import { longsightHome } from './home';
import { answersOfJob, getJobs, scanTable } from './job-queries';
import { formatJob, jobJson, LEGEND } from './job-report';
import { phaseOf, statusText, type TrackedJob } from './job-tracking';
import { resolveDefaultModel, TEST_MODEL_NOTICE, type ResolvedModel } from './model';
import { startLocalReconciler } from './reconciler';
import { ensureSampleVideo } from './sample-video';
import { StatusLine } from './status-line';
import { announceLocalRun, resolveTarget, type Resources } from './targets';
import { localExtractConfig } from './extract-config';
import { uploadFile } from './upload';
import { UsageError } from './usage-error';
import { findVideos, uniqueKeys, type VideoInput } from './video-files';
import { spawnWorkers, stopWorkers, type WorkerProcess } from './worker-processes';

export { UsageError } from './usage-error';
export type { TrackedJob } from './job-tracking';

export interface PipelineOptions {
  /** Video files, or folders searched for videos (their subfolders too with `recursive`). */
  videos: string[];
  recursive?: boolean;
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
  /** Longsight's home for this run (logs, the history, the sample video): default longsightHome(). */
  cacheDir?: string;
  logFile?: string;
  /** Extraction invocations at once (S3 invokes the Lambda concurrently; default 2). */
  extractConcurrency?: number;
  /** Worker queue visibility timeout (local targets). */
  visibilityTimeoutSeconds?: number;
  /** At most one progress write per job per this many ms (default 2000). */
  progressIntervalMs?: number;
  /** Where result lines go (stdout by default). */
  out?: NodeJS.WriteStream;
  /** Where notices and progress go (stderr by default). */
  err?: NodeJS.WriteStream;
  /** Stops the run as Ctrl-C does (running jobs released, finished ones kept): for callers that drive runs themselves. */
  signal?: AbortSignal;
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
  logFile?: string;
}

const CONTENT_TYPES: Record<string, string> = { '.mp4': 'video/mp4', '.m4v': 'video/mp4', '.mov': 'video/quicktime', '.mkv': 'video/x-matroska', '.webm': 'video/webm', '.avi': 'video/x-msvideo' };

/** S3 keys for the local files: their base names, made unique. */
export function keysFor(files: string[]): string[] {
  return uniqueKeys(files.map((f) => ({ file: f, key: basename(f) }))).map((v) => v.key);
}

// ---------------------------------------------------------------------------------------------
// Stages

/** The videos to run: files and folders as given, or the generated sample when none is. */
export async function resolveInputs(videos: string[], o: { recursive?: boolean; home: string; note(s: string): void }): Promise<VideoInput[]> {
  if (videos.length > 0) return findVideos(videos, { recursive: o.recursive });
  o.note('No video given: using a generated sample (8 s test pattern, made with ffmpeg).');
  const file = await ensureSampleVideo(o.home);
  return [{ file, key: basename(file) }];
}

/** The model the local workers load: --model, LONGSIGHT_MODEL_DIR, or the tiny test checkpoint (with a notice). */
export async function resolveModel(model: string | undefined, note: (s: string) => void): Promise<ResolvedModel> {
  const m = await resolveDefaultModel({ model });
  note(m.isTestModel ? TEST_MODEL_NOTICE : `Model: ${m.manifest.modelId} (${m.dir})`);
  return m;
}

export interface RunLog {
  file: string;
  /** Info and above, whatever the console's LONGSIGHT_LOG_LEVEL (unless it asks for less). */
  log: Logger;
  level: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  stream: WriteStream;
  close(): Promise<void>;
}

/** The run's log file (default <home>/logs/run-<time>.log): one JSON object per line from every part of the run. */
export function openRunLog(home: string, file?: string): RunLog {
  const path = file ?? join(home, 'logs', `run-${new Date().toISOString().replace(/[:.]/g, '-')}.log`);
  mkdirSync(dirname(path), { recursive: true });
  const stream = createWriteStream(path, { flags: 'a' });
  const level = (process.env.LONGSIGHT_LOG_LEVEL as 'debug' | 'info' | 'warn' | 'error' | 'silent' | undefined) ?? 'info';
  const log = createLogger({ service: 'longsight-run' }, (line) => stream.write(line + '\n'), level);
  return {
    file: path,
    log,
    level,
    stream,
    close: () => new Promise<void>((r) => stream.end(r)),
  };
}

export interface Servers {
  kind: 'embedded' | 'endpoint' | 'stack';
  clients: AwsClients;
  resources: Resources;
  /** The SDK environment (endpoints, region, credentials) for the worker processes. */
  env: Record<string, string>;
  embedded?: EmbeddedAws;
  /** One line for the user: where the run's S3, SQS and DynamoDB are. */
  describe: string;
  /** A deployed stack's index profile (from its outputs): part of every job id its Lambda makes. */
  stackProfile?: string;
  stop(): Promise<void>;
}

/**
 * Where the run's S3, SQS and DynamoDB are: the embedded servers (default), one endpoint
 * (LocalStack: resources provisioned there), or a deployed stack (its resources from its outputs).
 * The SDK environment is applied to this process until stop().
 */
export async function startServers(o: { stack?: string; endpoint?: string; region?: string; visibilityTimeoutSeconds: number }): Promise<Servers> {
  const queue = { visibilityTimeoutSeconds: o.visibilityTimeoutSeconds, maxReceiveCount: 3 };
  if (o.stack || o.endpoint) {
    const t = o.endpoint && !o.stack ? undefined : await resolveTarget({ stack: o.stack, region: o.region });
    const env: Record<string, string> = { ...(t?.env ?? {}), ...(o.region ? { AWS_REGION: o.region } : {}) };
    if (o.endpoint) for (const k of ['AWS_ENDPOINT_URL', 'AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL_SQS', 'AWS_ENDPOINT_URL_DYNAMODB']) env[k] = o.endpoint;
    const restore = applyEnv(env);
    const clients = createAwsClients();
    const resources = t ? t.resources : await provisionLongsight(clients, {}, queue);
    return {
      kind: o.stack ? 'stack' : 'endpoint',
      clients,
      resources,
      env,
      describe: `Target: ${o.stack ? `stack ${o.stack}` : `endpoint ${o.endpoint}`} · bucket ${resources.bucket}`,
      stackProfile: t?.outputs?.[INDEX_PROFILE_OUTPUT],
      stop: async () => {
        destroyClients(clients);
        restore();
      },
    };
  }
  const embedded = await startEmbeddedAws({ region: o.region });
  // Parts of the run that log with a default logger write to the terminal: keep it to warnings
  // (the run's own log file records info lines).
  const restore = applyEnv({ ...embedded.env, LONGSIGHT_LOG_LEVEL: process.env.LONGSIGHT_LOG_LEVEL ?? 'warn' });
  const clients = createAwsClients();
  const resources = await provisionLongsight(clients, {}, queue);
  return {
    kind: 'embedded',
    clients,
    resources,
    env: { ...embedded.env },
    embedded,
    describe: `Local AWS: S3+SQS ${embedded.endpoints.s3} · DynamoDB ${embedded.endpoints.dynamodb} (embedded, in memory)`,
    stop: async () => {
      destroyClients(clients);
      restore();
      await embedded.stop();
    },
  };
}

export function destroyClients(c: AwsClients): void {
  c.s3.destroy();
  c.sqs.destroy();
  c.ddb.destroy();
}

export interface Workers {
  processes: WorkerProcess[];
  /** Ids of the processes that have exited. */
  exited: Set<string>;
  stop(): Promise<void>;
}

/**
 * The real worker as `count` child processes (the program the container runs), configured through
 * the environment the stack sets, CPU inference, info-level JSON logs into the run's log.
 */
export function startWorkers(servers: Servers, model: ResolvedModel, o: { count: number; visibilityTimeoutSeconds: number; home: string; runLog: RunLog; progressIntervalMs?: number }): Workers {
  const workerConfig: WorkerConfigInput = {
    jobsPerWorker: 1,
    waitTimeSeconds: 2,
    visibilityTimeoutSeconds: o.visibilityTimeoutSeconds,
    retryDelaySeconds: 5,
    stopTimeoutSeconds: 15,
    model: { dir: model.dir, executionProvider: 'cpu', threads: Math.max(1, Math.floor(availableParallelism() / o.count)) },
    health: { file: join(o.home, 'run', `health-${process.pid}`), intervalSeconds: 5, maxAgeSeconds: 30 },
    metrics: { enabled: false },
    pricing: { instanceType: 'local' },
    ...(o.progressIntervalMs !== undefined ? { progressIntervalSeconds: o.progressIntervalMs / 1000 } : {}),
  };
  const r = servers.resources;
  const { workers } = spawnWorkers(
    o.count,
    {
      ...servers.env,
      [ENV.queueUrl]: r.queueUrl,
      [ENV.dlqUrl]: r.dlqUrl,
      [ENV.jobsTable]: r.jobsTable,
      [ENV.answersTable]: r.answersTable,
      [ENV.videoBucket]: r.bucket,
      [ENV.workerConfig]: JSON.stringify(workerConfig),
      // The log file records info lines, whatever this process's console level.
      [ENV.logLevel]: o.runLog.level,
      // The SDK's notice that its 2027 releases need Node 22 is not a line of this run's JSON log.
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
    o.runLog.stream,
  );
  const exited = new Set<string>();
  for (const w of workers) void w.exited.then(() => exited.add(w.id));
  return { processes: workers, exited, stop: () => stopWorkers(workers, 20_000) };
}

export interface Upload {
  job: TrackedJob;
  object: UploadedObject;
}

/** Uploads each video (its `<stem>.questions.json` sidecar first: the Lambda reads it when the video's event arrives). */
export async function uploadVideos(servers: Servers, inputs: VideoInput[], o: { profile: string; note(s: string): void; status: StatusLine }): Promise<Upload[]> {
  const { clients: c, resources } = servers;
  const many = inputs.length > 20;
  const uploads: Upload[] = [];
  for (const [i, { file, key }] of inputs.entries()) {
    const uploadStartedAt = Date.now();
    const localSidecar = file.replace(/\.[^./]+$/, '') + SIDECAR_SUFFIX;
    if (existsSync(localSidecar)) await uploadFile(c.s3, resources.bucket, sidecarKeyFor(key), localSidecar, 'application/json');
    const ext = key.slice(key.lastIndexOf('.')).toLowerCase();
    const object = await uploadFile(c.s3, resources.bucket, key, file, CONTENT_TYPES[ext] ?? 'application/octet-stream');
    const jobId = jobIdFor({ bucket: object.bucket, key: object.key, versionId: object.versionId, etag: object.etag }, o.profile);
    uploads.push({ job: { file, key, jobId, uploadStartedAt }, object });
    if (!many) o.note(`Uploaded ${basename(file)} (${(object.size / 1024).toFixed(0)} kB) → s3://${resources.bucket}/${key}`);
    else o.status.update(`uploading ${i + 1}/${inputs.length}`);
  }
  if (many) o.note(`Uploaded ${inputs.length} videos → s3://${resources.bucket}/`);
  return uploads;
}

/**
 * The real extraction handler, invoked once per upload with the event S3 would send, a few at once
 * (S3 invokes the Lambda concurrently), each retried like an async Lambda invocation. Records each
 * job's extraction progress and outcome on its TrackedJob; `onChange` after each.
 */
export async function startExtraction(
  servers: Servers,
  uploads: Upload[],
  o: { config: ExtractRuntimeConfig; log: Logger; concurrency?: number; stopped(): boolean; note(s: string): void; onChange(): void },
): Promise<void> {
  const { createExtractHandler } = await import('../../lambda/extract-frames/handler');
  const byKey = new Map(uploads.map((u) => [u.object.key, u.job]));
  const handler = createExtractHandler({
    clients: servers.clients,
    config: o.config,
    jobsTable: servers.resources.jobsTable,
    queueUrl: servers.resources.queueUrl,
    logger: o.log.child({ service: 'longsight-extract-frames' }),
    onProgress: (key, done, total) => {
      const t = byKey.get(key);
      if (t) t.extraction = { done, total };
      o.onChange();
    },
  });
  const pending = [...uploads];
  const invokeNext = async (): Promise<void> => {
    for (let u = pending.shift(); u && !o.stopped(); u = pending.shift()) {
      await invokeOnce(handler, u, { quiet: uploads.length > 20, note: o.note });
      u.job.extraction = undefined;
      o.onChange();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency ?? 2, uploads.length)) }, invokeNext));
}

type Handler = Awaited<ReturnType<typeof import('../../lambda/extract-frames/handler').createExtractHandler>>;

/** One S3 event through the handler, with up to 3 attempts (as Lambda retries an asynchronous invocation). */
async function invokeOnce(handler: Handler, { job: t, object }: Upload, o: { quiet: boolean; note(s: string): void }): Promise<void> {
  const event = buildS3Event(object);
  let lastError: unknown;
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      const deadline = Date.now() + 15 * 60_000;
      const r = await handler(event, { awsRequestId: `local-${t.jobId}-${attempt}`, getRemainingTimeInMillis: () => deadline - Date.now() });
      const res = r.results[0];
      if (!res) t.extractError = 'the extraction handler ignored the event';
      else if (res.outcome === 'ignored') t.extractError = `ignored by the extraction handler: ${res.why}`;
      else if (res.outcome === 'queued') {
        t.queued = true;
        if (!o.quiet) o.note(`Extracted ${res.frames} frames from ${t.key} → job ${res.jobId} queued`);
      }
      return;
    } catch (e) {
      lastError = e;
      await new Promise((r) => setTimeout(r, 1000 * attempt));
    }
  }
  t.extractError = `extraction failed after 3 attempts: ${(lastError as Error).message}`;
}

export interface WatchOptions {
  /** Called once per job when it is DONE or FAILED (with its answers), or its extraction failed (no item). */
  onFinished(t: TrackedJob, item: JobItem | undefined, answers: AnswerItem[]): void;
  /** Called after every poll. */
  onPoll(): void;
  /** Why to stop early (interrupted, timed out, workers gone), or undefined to go on. */
  stopReason(): string | undefined;
  pollMs?: number;
}

/** Polls the jobs table until every tracked job is finished (or stopReason says why not); returns that reason. */
export async function watchJobs(servers: Servers, tracked: TrackedJob[], o: WatchOptions): Promise<string | undefined> {
  const { clients: c, resources } = servers;
  for (;;) {
    const items = await getJobs(c.ddb, resources.jobsTable, tracked.filter((t) => t.jobId && !t.printed).map((t) => t.jobId!));
    for (const t of tracked) {
      if (t.printed) continue;
      const item = t.jobId ? items.get(t.jobId) : undefined;
      if (item) t.item = item;
      const phase = phaseOf(t);
      if (phase !== 'done' && phase !== 'failed') continue;
      t.printed = true;
      const answers = phase === 'done' && item ? await answersOfJob(c.ddb, resources.answersTable, item.jobId) : [];
      t.answers = answers.length;
      o.onFinished(t, item, answers);
    }
    o.onPoll();
    if (tracked.every((t) => t.printed)) return undefined;
    const why = o.stopReason();
    if (why) return why;
    await new Promise((r) => setTimeout(r, o.pollMs ?? (tracked.length > 20 ? 500 : 250)));
  }
}

/** The run's result per job. */
export function summarize(tracked: TrackedJob[]): JobSummary[] {
  return tracked.map((t) => ({
    jobId: t.jobId ?? '',
    file: t.file,
    key: t.key,
    status: phaseOf(t) === 'done' ? 'DONE' : 'FAILED',
    reason: t.extractError ?? t.item?.reason ?? (t.printed ? undefined : 'unfinished'),
    answers: t.answers ?? 0,
  }));
}

/**
 * Copies the run's finished jobs (and `ask` jobs of a --keep-running session) with their answers
 * into the local history, before the in-memory servers go. Returns how many jobs were kept.
 */
export async function keepInHistory(servers: Servers, historyDir?: string): Promise<number> {
  const jobs = (await scanTable<JobItem>(servers.clients.ddb, servers.resources.jobsTable)).filter((j) => j.status === 'DONE' || j.status === 'FAILED');
  if (jobs.length === 0) return 0;
  const ids = new Set(jobs.map((j) => j.jobId));
  const answers = (await scanTable<AnswerItem>(servers.clients.ddb, servers.resources.answersTable)).filter((a) => ids.has(a.jobId));
  await withHistory((h) => recordJobs(h, jobs, answers), { dir: historyDir });
  return jobs.length;
}

// ---------------------------------------------------------------------------------------------
// The run

/** SIGINT/SIGTERM: the first stops the run in order (jobs released, finished ones kept); a second exits at once. */
function watchInterrupts(note: (s: string) => void, signal?: AbortSignal): { readonly interrupted: boolean; dispose(): void } {
  let interrupted = false;
  const stop = () => {
    if (interrupted) return false;
    interrupted = true;
    note('Stopping (Ctrl-C again to exit at once): releasing running jobs, keeping finished ones…');
    return true;
  };
  const onSignal = () => {
    if (stop()) return;
    note('Second interrupt: exiting now (running jobs are not released; nothing more is kept).');
    process.exit(130);
  };
  const onAbort = () => void stop();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  signal?.addEventListener('abort', onAbort, { once: true });
  if (signal?.aborted) stop();
  return {
    get interrupted() {
      return interrupted;
    },
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      signal?.removeEventListener('abort', onAbort);
    },
  };
}

/** What an interrupted or failed run stopped, and what it kept (after its workers stopped: running jobs finished or were released). */
function stoppedNote(tracked: TrackedJob[], servers: Servers, kept: number, logFile: string): string {
  const n = { extracting: 0, queued: 0, running: 0 };
  for (const t of tracked) {
    const p = phaseOf(t);
    if (p in n) n[p as keyof typeof n]++;
  }
  const open = n.extracting + n.queued + n.running;
  const jobs = (k: number) => `${k} job${k === 1 ? '' : 's'}`;
  let stopped: string;
  if (open === 0) stopped = 'every job had finished';
  else if (servers.kind === 'stack') stopped = `${jobs(open)} go on in the deployment (\`longsight jobs --stack …\`)`;
  else {
    const parts = [n.queued && `${n.queued} queued (or released by a stopping worker)`, n.running && `${n.running} still marked running (its worker did not stop in time)`, n.extracting && `${n.extracting} extracting`].filter(Boolean).join(', ');
    stopped = `${jobs(open)} not finished: ${parts}${servers.kind === 'embedded' ? '; gone with the in-memory servers (run again to redo them)' : "; left in the endpoint's queue"}`;
  }
  const keptText = servers.kind === 'embedded' ? `${kept} finished job${kept === 1 ? '' : 's'} in the local history (\`longsight jobs\`), ` : '';
  return `Stopped: ${stopped}. Kept: ${keptText}the log ${logFile}.`;
}

/** What a run starts, stopped in reverse order at its end. */
interface RunParts {
  servers?: Servers;
  workers?: Workers;
  reconciler?: Periodic;
  unannounce?: () => void;
}

interface RunContext {
  o: PipelineOptions;
  home: string;
  model?: ResolvedModel;
  runLog: RunLog;
  visibility: number;
  /** What the local extraction handler runs with; its index profile is part of every job id. */
  extractConfig: ExtractRuntimeConfig;
  note(s: string): void;
}

/** Servers, then the workers (they load the model while the videos upload and extract), the local reconciler, the announcement. */
async function startParts(c: RunContext, parts: RunParts): Promise<Servers> {
  const { o, note, runLog } = c;
  const s = (parts.servers = await startServers({ stack: o.stack, endpoint: o.endpoint, region: o.region, visibilityTimeoutSeconds: c.visibility }));
  note(`${s.describe} · logs ${runLog.file}`);
  runLog.log.info('run started', { target: s.kind, resources: s.resources, workers: o.workers });
  if (c.model) {
    parts.workers = startWorkers(s, c.model, { count: o.workers, visibilityTimeoutSeconds: c.visibility, home: c.home, runLog, progressIntervalMs: o.progressIntervalMs });
    note(`Workers: ${o.workers} local process${o.workers > 1 ? 'es' : ''} (CPU, onnxruntime) polling ${s.resources.queueUrl}`);
  }
  if (s.kind !== 'stack') parts.reconciler = startLocalReconciler(s.clients, s.resources, c.visibility, runLog.log);
  if (s.kind === 'embedded') parts.unannounce = announceLocalRun({ env: s.env, resources: s.resources, extractConfig: c.extractConfig }, join(c.home, 'runs'));
  o.onReady?.({ clients: s.clients, resources: s.resources, workers: parts.workers?.processes ?? [], env: s.env });
  return s;
}

async function stopParts(parts: RunParts): Promise<void> {
  parts.unannounce?.();
  await parts.reconciler?.stop();
  await parts.workers?.stop();
  await parts.servers?.stop();
}

/** Prints each finished job (text or JSON) on `out`, and the legend of s and pooling after the first DONE one (text). */
function jobPrinter(c: RunContext, println: (text: string) => void): WatchOptions['onFinished'] {
  let legendShown = Boolean(c.o.json);
  return (t, item, answers) => {
    c.runLog.log.info('job finished', { jobId: t.jobId, key: t.key, status: item?.status ?? 'FAILED', reason: t.extractError ?? item?.reason });
    if (t.extractError || !item) {
      println(c.o.json ? JSON.stringify({ file: t.file, key: t.key, status: 'FAILED', reason: t.extractError }) : `✘ ${t.key}  FAILED: ${t.extractError}`);
      return;
    }
    const opts = { uploadStartedAt: t.uploadStartedAt };
    println(c.o.json ? jobJson(item, answers, { file: t.file, key: t.key }, opts) : formatJob(item, answers, t.key, opts));
    if (!legendShown && item.status === 'DONE') {
      legendShown = true;
      c.note(`(${LEGEND})`);
    }
  };
}

/** Why the watch stops before every job finished: interrupted, out of time, or no worker left. */
function stopReason(c: RunContext, tracked: TrackedJob[], parts: RunParts, interrupted: () => boolean, deadline: number): () => string | undefined {
  return () => {
    if (interrupted()) return 'interrupted';
    if (Date.now() > deadline) return `timed out after ${c.o.timeoutSeconds} s with ${tracked.filter((t) => !t.printed).length} job(s) unfinished`;
    const w = parts.workers;
    if (w && w.processes.length > 0 && w.exited.size === w.processes.length) return `every worker process exited before the jobs finished: see ${c.runLog.file}`;
    return undefined;
  };
}

/** The summary; with --keep-running, the wait for Ctrl-C; the finished jobs kept; what a stopped run stopped and kept. */
async function reportRun(c: RunContext, s: Servers, tracked: TrackedJob[], failure: string | undefined, started: number, interrupted: () => boolean): Promise<PipelineResult> {
  const { o, note } = c;
  const jobs = summarize(tracked);
  const done = jobs.filter((j) => j.status === 'DONE').length;
  const unfinished = jobs.filter((j) => j.reason === 'unfinished').length;
  const wallMs = Date.now() - started;
  note(`${jobs.length} job${jobs.length === 1 ? '' : 's'}: ${done} DONE, ${jobs.length - done - unfinished} FAILED${unfinished ? `, ${unfinished} unfinished` : ''} in ${(wallMs / 1000).toFixed(1)} s (this run, starting servers and workers included).`);
  await o.inspect?.({ clients: s.clients, resources: s.resources });
  if (o.keepRunning && !failure && s.kind === 'embedded') {
    note(
      `Still running (Ctrl-C to stop). In another terminal: longsight jobs · longsight status <jobId> · longsight answers <jobId> · longsight ask <jobId> "a question" · longsight index s3://${s.resources.bucket}/ · longsight query "SELECT count(*) AS n FROM answers"`,
    );
    while (!interrupted()) await new Promise((r) => setTimeout(r, 250));
  }
  const kept = s.kind === 'embedded' ? await keepFinished(s, join(c.home, 'history'), note) : 0;
  if (failure) note(stoppedNote(tracked, s, kept, c.runLog.file));
  c.runLog.log.info('run finished', { jobs: jobs.length, done, failure, wallMs, keptInHistory: kept });
  return { exitCode: failure || done < jobs.length ? 1 : 0, jobs, resources: s.resources, wallMs, logFile: c.runLog.file };
}

export async function runPipeline(o: PipelineOptions): Promise<PipelineResult> {
  const started = Date.now();
  const status = new StatusLine(o.err ?? process.stderr);
  const note = (s: string) => status.println(s, o.err ?? process.stderr);
  const home = resolve(o.cacheDir ?? longsightHome());
  if (!Number.isInteger(o.workers) || o.workers < 0 || o.workers > 16) throw new UsageError(`--workers must be an integer from 0 to 16, got ${o.workers}`);
  if (!o.stack && o.workers < 1) throw new UsageError('--workers must be at least 1 when the pipeline runs here (only a deployed --stack has workers of its own)');

  const inputs = await resolveInputs(o.videos, { recursive: o.recursive, home, note });
  const media = resolveBinaries();
  if (media.notice) note(`Notice: ${media.notice}`);
  const model = o.workers > 0 ? await resolveModel(o.model, note) : undefined;
  const c: RunContext = { o, home, model, runLog: openRunLog(home, o.logFile), visibility: o.visibilityTimeoutSeconds ?? 120, extractConfig: localExtractConfig(o, model), note };
  const interrupts = watchInterrupts(note, o.signal);
  const interrupted = () => interrupts.interrupted;
  const parts: RunParts = {};
  try {
    const s = await startParts(c, parts);
    const uploads = await uploadVideos(s, inputs, { profile: runProfile(c, s), note, status });
    const tracked = uploads.map((u) => u.job);
    const render = () => status.update(statusText(tracked));
    render();
    const extraction =
      s.kind === 'stack' ? Promise.resolve() : startExtraction(s, uploads, { config: c.extractConfig, log: c.runLog.log, concurrency: o.extractConcurrency, stopped: interrupted, note, onChange: render });
    const watch: WatchOptions = {
      onFinished: jobPrinter(c, (text) => status.println(text, o.out ?? process.stdout)),
      onPoll: render,
      stopReason: stopReason(c, tracked, parts, interrupted, o.timeoutSeconds ? started + o.timeoutSeconds * 1000 : Infinity),
    };
    const failure = await watchJobs(s, tracked, watch);
    if (failure) {
      // Stopped early: the workers finish or release what they run, the extraction under way ends,
      // and one last look prints what finished meanwhile, so what is reported as stopped is so.
      await parts.workers?.stop();
      await extraction;
      await watchJobs(s, tracked, { ...watch, stopReason: () => failure });
    }
    await extraction;
    status.done();
    return await reportRun(c, s, tracked, failure, started, interrupted);
  } finally {
    interrupts.dispose();
    status.done();
    await stopParts(parts);
    await c.runLog.close();
  }
}

/** The index profile of the run's job ids: a deployed stack's own (its Lambda makes the jobs), else the local extraction's. */
function runProfile(c: RunContext, s: Servers): string {
  if (s.kind !== 'stack') return extractionProfile(c.extractConfig).id;
  if (!s.stackProfile) throw new Error(`stack ${c.o.stack} has no ${INDEX_PROFILE_OUTPUT} output: deploy this version of Longsight to it first (npx cdk deploy)`);
  return s.stackProfile;
}

/** keepInHistory, with a failure reported (the run's results are printed already; the history is a convenience). */
async function keepFinished(servers: Servers, dir: string, note: (s: string) => void): Promise<number> {
  try {
    return await keepInHistory(servers, dir);
  } catch (e) {
    note(`Notice: the finished jobs could not be kept in the local history (${dir}): ${(e as Error).message}`);
    return 0;
  }
}
