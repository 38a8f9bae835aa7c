/**
 * The frame-extraction Lambda. For each S3 ObjectCreated record: probe the video through a
 * presigned URL, sample N frames uniformly (LLaVA-OneVision's rule), decode them with ffmpeg and
 * preprocess them as the reference processor does (sample-frames.ts), write frames + manifest under
 * frames/<jobId>/, then the job item (QUEUED) and one job message. Idempotent per (bucket, key,
 * version, index profile); see job-writer.ts for the order of the writes. The same handler takes
 * `longsight index`'s backfill: records built from listed objects, which carry no version id (the
 * current version is read from S3, so a backfilled video and its upload event make the same job).
 *
 * `handler` is what Lambda invokes (configuration from the environment, parsed once per cold
 * start). `createExtractHandler(deps)` is the same handler with explicit clients and configuration,
 * for the local pipeline and the tests.
 */
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { createAwsClients, isS3NotFound, type AwsClients } from '../../lib/aws-clients';
import { extractionProfile, ExtractRuntimeConfigSchema, type ExtractRuntimeConfig } from '../../lib/contracts/env-config';
import { jobIdFor, videoUri } from '../../lib/contracts/job-id';
import type { VideoRef } from '../../lib/contracts/job-message';
import { ENV, jsonFromEnv } from '../../lib/contracts/runtime-env';
import { parseOrThrow } from '../../lib/contracts/validate';
import { createLogger, type Logger } from '../../lib/log';
import { resolveBinaries, type MediaBinaries } from './binaries';
import { checkProbe, checkSignature, checkSize, PermanentInputError, reasonForProbeCrash, reasonForProbeFailure } from './failure-reasons';
import { sniff, SNIFF_BYTES, type FileSignature } from './file-signature';
import { demuxerFor } from './input-restrictions';
import { isTransientFfmpegError, TransientMediaError } from './frame-extractor';
import { storeFrames } from './frame-store';
import { buildJobMessage, createJobStore, LeaseLostError } from './job-writer';
import { planJob } from './job-settings';
import { ProbeFailure, probeVideo } from './probe';
import { sampleFrames } from './sample-frames';
import { parseS3Event, skipReason, type S3ObjectEvent } from './s3-event';
import { loadSidecar } from './sidecar';

export interface ExtractHandlerDeps {
  clients: Pick<AwsClients, 's3' | 'sqs' | 'ddb'>;
  config: ExtractRuntimeConfig;
  jobsTable: string;
  queueUrl: string;
  /** Default: FFMPEG_PATH / FFPROBE_PATH, else a system ffmpeg 5+, else the npm-shipped binaries (binaries.ts). */
  binaries?: MediaBinaries;
  logger?: Logger;
  /** ffmpeg processes at once (default: the CPU count). */
  concurrency?: number;
  /** Lifetime of the presigned URL ffmpeg reads through (default 1 hour, beyond the Lambda maximum of 15 minutes). */
  presignExpiresSeconds?: number;
  /** Extraction lease when the invocation has no deadline of its own (no Lambda context). Default 15 minutes. */
  leaseMs?: number;
  now?: () => Date;
  onProgress?: (key: string, done: number, total: number) => void;
}

/** The part of the Lambda context the handler uses. */
export interface InvocationContext {
  awsRequestId?: string;
  getRemainingTimeInMillis?: () => number;
}

export type ObjectOutcome =
  | { outcome: 'queued'; bucket: string; key: string; jobId: string; frames: number; messageId?: string }
  | { outcome: 'failed'; bucket: string; key: string; jobId: string; reason: string }
  /** The job exists already (a duplicated event): nothing was written. */
  | { outcome: 'duplicate'; bucket: string; key: string; jobId: string; status: string }
  /** Another invocation holds the job (a concurrent duplicate): nothing was written. */
  | { outcome: 'in-progress'; bucket: string; key: string; jobId: string }
  | { outcome: 'ignored'; bucket: string; key: string; why: string };

export interface ExtractSummary {
  results: ObjectOutcome[];
}

export type ExtractHandler = (event: unknown, context?: InvocationContext) => Promise<ExtractSummary>;

export function createExtractHandler(deps: ExtractHandlerDeps): ExtractHandler {
  const log = deps.logger ?? createLogger({ component: 'extract-frames' });
  const { s3 } = deps.clients;
  const store = createJobStore({ ddb: deps.clients.ddb, sqs: deps.clients.sqs, jobsTable: deps.jobsTable, queueUrl: deps.queueUrl, now: deps.now });
  const now = deps.now ?? (() => new Date());
  const ex = deps.config.extraction;
  // The environment's plan (no sidecar) is the same for every object: computed once per cold start.
  const defaults = planJob(deps.config);
  // Part of every job id: one job per (video version, profile).
  const profile = extractionProfile(deps.config).id;
  let binaries = deps.binaries;
  /** Located once per cold start; the npm fallback is announced once. */
  const mediaBinaries = (): MediaBinaries => {
    if (!binaries) {
      binaries = resolveBinaries();
      if (binaries.notice) log.warn(binaries.notice);
    }
    return binaries;
  };

  async function processObject(obj: S3ObjectEvent, context: InvocationContext | undefined): Promise<ObjectOutcome> {
    const base = { bucket: obj.bucket, key: obj.key };
    const skip = skipReason(obj.key);
    if (skip) {
      log.info('ignored object', { ...base, why: skip });
      return { outcome: 'ignored', ...base, why: skip };
    }

    // The object as it is now: gone or overwritten since the event means a later event owns it.
    let head;
    try {
      head = await s3.send(new HeadObjectCommand({ Bucket: obj.bucket, Key: obj.key, VersionId: obj.versionId }));
    } catch (e) {
      if (isS3NotFound(e)) {
        log.warn('ignored object: no longer exists', base);
        return { outcome: 'ignored', ...base, why: 'the object no longer exists' };
      }
      throw e;
    }
    const headEtag = head.ETag?.replace(/"/g, '');
    // A backfill record names no version: the current one (the one its upload event named) is read.
    const versionId = obj.versionId ?? (head.VersionId && head.VersionId !== 'null' ? head.VersionId : undefined);
    if (!obj.versionId && obj.etag && headEtag && headEtag !== obj.etag) {
      log.info('ignored object: overwritten since the event', { ...base, eventEtag: obj.etag, currentEtag: headEtag });
      return { outcome: 'ignored', ...base, why: 'the object was overwritten since this event (its own event follows)' };
    }
    const sizeBytes = head.ContentLength ?? obj.size ?? 0;
    const video: VideoRef = {
      bucket: obj.bucket,
      key: obj.key,
      ...(versionId ? { versionId } : {}),
      ...(obj.etag || headEtag ? { etag: obj.etag ?? headEtag } : {}),
      sizeBytes,
    };
    const jobId = jobIdFor(video, profile);
    const uri = videoUri(obj.bucket, obj.key);
    const jlog = log.child({ jobId, ...base, versionId });

    const leaseMs = context?.getRemainingTimeInMillis?.() ?? deps.leaseMs ?? 15 * 60_000;
    const claim = await store.claim({ jobId, profile, videoUri: uri, video, questions: defaults.questions, settings: defaults.settings, leaseMs });
    if (!claim.claimed) {
      const prior = claim.existing;
      if (prior && prior.status === 'QUEUED' && !prior.enqueuedAt && prior.leaseHeld) {
        jlog.info('job is being extracted by another invocation: nothing to do');
        return { outcome: 'in-progress', ...base, jobId };
      }
      jlog.info('duplicate event: job exists', { status: prior?.status, enqueuedAt: prior?.enqueuedAt });
      return { outcome: 'duplicate', ...base, jobId, status: prior?.status ?? 'unknown' };
    }
    const token = claim.token;
    const started = Date.now();
    try {
      try {
        return await extractAndEnqueue();
      } catch (e) {
        if (!(e instanceof PermanentInputError)) throw e;
        jlog.warn('job failed: input cannot be processed', { reason: e.reason });
        await store.fail(jobId, token, e.reason, { extractMs: Date.now() - started });
        return { outcome: 'failed', ...base, jobId, reason: e.reason };
      }
    } catch (e) {
      // Lost at any step, recording a failure included: the attempt that took over owns the job.
      if (e instanceof LeaseLostError) {
        jlog.warn('lease lost: another attempt owns the job', { error: e.message });
        return { outcome: 'in-progress', ...base, jobId };
      }
      // Transient: give the job back so Lambda's retry can take it at once, then fail the invocation.
      await store.release(jobId, token).catch((re) => jlog.error('could not release the lease', { error: re }));
      throw e;
    }

    async function extractAndEnqueue(): Promise<ObjectOutcome> {
      checkSize(sizeBytes, ex);
      const { key: sidecarKey, sidecar } = await loadSidecar(s3, obj.bucket, obj.key);
      const plan = sidecar ? planJob(deps.config, sidecar, sidecarKey) : defaults;

      const get = new GetObjectCommand({ Bucket: obj.bucket, Key: obj.key, VersionId: versionId });
      const head0 = await s3.send(new GetObjectCommand({ Bucket: obj.bucket, Key: obj.key, VersionId: versionId, Range: `bytes=0-${SNIFF_BYTES - 1}` }));
      const headBytes = Buffer.from(await head0.Body!.transformToByteArray());
      const signature = sniff(headBytes);
      checkSignature(signature, headBytes);
      const demuxer = demuxerFor(signature.kind);

      const url = await getSignedUrl(s3, get, { expiresIn: deps.presignExpiresSeconds ?? 3600 });
      const bin = mediaBinaries();
      const probe = await probeUpload(bin, url, demuxer, signature, headBytes);
      const { durationSeconds } = checkProbe(probe, ex, signature);
      const v = probe.video!;
      jlog.info('extracting frames', { codec: v.codec, width: v.width, height: v.height, rotation: v.rotation, durationSeconds, frameCount: v.frameCount, requested: plan.frames });
      const progress = (d: number, t: number) => {
        deps.onProgress?.(obj.key, d, t);
        // Progress in the log at each quarter: a 1024-frame extraction takes minutes.
        if (t >= 16 && d % Math.ceil(t / 4) === 0 && d < t) jlog.info('extraction progress', { frames: d, of: t });
      };
      const { frames } = await sampleFrames({ ffmpeg: bin.ffmpeg, ffprobe: bin.ffprobe, input: url, demuxer, video: v, durationSeconds, frames: plan.frames, extraction: ex, concurrency: deps.concurrency, log: jlog, onProgress: progress });

      const stored = await storeFrames(s3, { bucket: obj.bucket, jobId, video, durationSeconds, size: ex.imageSize, format: ex.format, frames });
      if (stored.removed.length) jlog.info('removed leftovers of an earlier attempt', { removed: stored.removed.length });

      const settings = { ...plan.settings, frames: frames.length };
      const extractMs = Date.now() - started;
      await store.ready(jobId, token, {
        frames: { count: frames.length, manifestKey: stored.manifestKey, durationSeconds },
        questions: plan.questions,
        settings,
        timings: { extractMs },
      });
      const messageId = await store.send(
        buildJobMessage({
          jobId,
          profile,
          video,
          frames: {
            bucket: obj.bucket,
            prefix: stored.prefix,
            manifestKey: stored.manifestKey,
            count: frames.length,
            width: ex.imageSize,
            height: ex.imageSize,
            format: ex.format,
            timestamps: stored.manifest.frames.map((f) => f.timestamp),
          },
          questions: plan.questions,
          settings,
          enqueuedAt: now().toISOString(),
        }),
      );
      await store.enqueued(jobId, token);
      jlog.info('job queued', { frames: frames.length, extractMs, messageId });
      return { outcome: 'queued', ...base, jobId, frames: frames.length, messageId };
    }
  }

  /** ffprobe on the upload; a probe killed by a signal is retried once with the second prober, if any. */
  async function probeUpload(bin: MediaBinaries, url: string, demuxer: string | undefined, signature: FileSignature, headBytes: Buffer) {
    try {
      return await probeVideo(bin.ffprobe, url, { demuxer });
    } catch (e) {
      if (!(e instanceof ProbeFailure)) throw e;
      if (e.timedOut || isTransientFfmpegError(e.stderr)) throw new TransientMediaError(e.message);
      if (!e.signal) throw new PermanentInputError(reasonForProbeFailure(e.stderr, signature, headBytes));
      if (!bin.secondProber) throw new PermanentInputError(reasonForProbeCrash(e.signal));
      log.warn('ffprobe was killed by a signal: retrying with the second prober', { signal: e.signal, secondProber: bin.secondProber });
      try {
        return await probeVideo(bin.secondProber, url, { demuxer });
      } catch (e2) {
        if (!(e2 instanceof ProbeFailure)) throw e2;
        if (e2.timedOut || isTransientFfmpegError(e2.stderr)) throw new TransientMediaError(e2.message);
        throw new PermanentInputError(reasonForProbeCrash(e.signal, e2));
      }
    }
  }

  return async (event, context) => {
    const parsed = parseS3Event(event);
    for (const u of parsed.unusable) log.warn('skipped event record', u);
    const results: ObjectOutcome[] = [];
    const errors: unknown[] = [];
    // One object at a time: each extraction already uses every core. A transient failure of one
    // record does not stop the others; the invocation then fails so Lambda retries, and the
    // records that succeeded are duplicates on the retry (nothing is written twice).
    for (const obj of parsed.objects) {
      try {
        results.push(await processObject(obj, context));
      } catch (e) {
        log.error('transient failure: the invocation will be retried', { bucket: obj.bucket, key: obj.key, error: e });
        errors.push(e);
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `${errors.length} objects failed transiently`);
    return { results };
  };
}

/** Reads the Lambda's configuration from its environment (validated; errors name the variable and field). */
export function depsFromEnv(env: NodeJS.ProcessEnv = process.env): ExtractHandlerDeps {
  const json = jsonFromEnv(env, ENV.extractConfig, 'the Lambda needs its extraction configuration (JSON)');
  const config = parseOrThrow(ExtractRuntimeConfigSchema, json, ENV.extractConfig);
  const jobsTable = env[ENV.jobsTable];
  const queueUrl = env[ENV.queueUrl];
  if (!jobsTable) throw new Error(`${ENV.jobsTable} is not set`);
  if (!queueUrl) throw new Error(`${ENV.queueUrl} is not set`);
  return { clients: createAwsClients(env), config, jobsTable, queueUrl, binaries: resolveBinaries(env) };
}

let coldStart: ExtractHandler | undefined;

/** The Lambda entry point. */
export async function handler(event: unknown, context?: InvocationContext): Promise<ExtractSummary> {
  coldStart ??= createExtractHandler(depsFromEnv());
  return coldStart(event, context);
}
