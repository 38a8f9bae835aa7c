/**
 * The local backfill's hand-off: each selected video goes to the real extraction handler as the S3
 * ObjectCreated record S3 would have sent for it, a bounded number at once and at a bounded rate
 * (what the deployed Distributed Map's MaxConcurrency does), retried like an asynchronous Lambda
 * invocation. The handler decides: it claims the job under the profile (so a rerun, an upload
 * event or another backfill racing on the same video still make one job) or says why not.
 */
import { s3EventRecord } from '../../lambda/extract-frames/s3-event';
import type { ExtractHandler, ObjectOutcome } from '../../lambda/extract-frames/handler';
import type { SurveyedVideo } from './survey';

export type HandOffOutcome =
  | { key: string; jobId: string; result: 'indexed'; frames: number }
  | { key: string; jobId: string; result: 'skipped'; why: string }
  | { key: string; jobId: string; result: 'failed'; reason: string };

export interface HandOffOptions {
  handler: ExtractHandler;
  /** Extractions at once (default 2). */
  concurrency?: number;
  /** Most extractions started per second (default: no limit beyond concurrency). */
  ratePerSecond?: number;
  /** Invocations per object before it counts as failed (default 3, as Lambda's async retries). */
  attempts?: number;
  /** Seconds before the n-th retry: n × this (default 1). */
  retryDelaySeconds?: number;
  onResult?: (o: HandOffOutcome) => void;
  /** Checked before each new extraction: true stops the hand-off (what started finishes). */
  stopped?: () => boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function outcomeOf(v: SurveyedVideo, r: ObjectOutcome | undefined): HandOffOutcome {
  const base = { key: v.object.key, jobId: v.jobId };
  if (!r) return { ...base, result: 'failed', reason: 'the extraction handler ignored the record' };
  switch (r.outcome) {
    case 'queued':
      return { ...base, jobId: r.jobId, result: 'indexed', frames: r.frames };
    case 'failed':
      return { ...base, jobId: r.jobId, result: 'failed', reason: r.reason };
    case 'duplicate':
      return { ...base, jobId: r.jobId, result: 'skipped', why: `already indexed (job ${r.status})` };
    case 'in-progress':
      return { ...base, jobId: r.jobId, result: 'skipped', why: 'being extracted by another invocation' };
    case 'ignored':
      return { ...base, result: 'skipped', why: r.why };
  }
}

/** Hands every video to the handler; resolves with one outcome per video that was started, in start order. */
export async function handOff(videos: readonly SurveyedVideo[], o: HandOffOptions): Promise<HandOffOutcome[]> {
  const attempts = o.attempts ?? 3;
  const minGapMs = o.ratePerSecond ? 1000 / o.ratePerSecond : 0;
  let nextStart = 0;
  let next = 0;
  const out: HandOffOutcome[] = [];
  const one = async (v: SurveyedVideo): Promise<HandOffOutcome> => {
    const event = { Records: [s3EventRecord({ ...v.object, versionId: v.object.versionId }, 'ObjectCreated:Backfill')] };
    let lastError: unknown;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        const deadline = Date.now() + 15 * 60_000;
        const r = await o.handler(event, { awsRequestId: `backfill-${v.jobId}-${attempt}`, getRemainingTimeInMillis: () => deadline - Date.now() });
        return outcomeOf(v, r.results[0]);
      } catch (e) {
        lastError = e;
        if (attempt < attempts) await sleep((o.retryDelaySeconds ?? 1) * 1000 * attempt);
      }
    }
    return { key: v.object.key, jobId: v.jobId, result: 'failed', reason: `extraction failed after ${attempts} attempts: ${(lastError as Error)?.message ?? String(lastError)}` };
  };
  const lane = async () => {
    while (next < videos.length && !o.stopped?.()) {
      const v = videos[next++];
      const wait = nextStart - Date.now();
      nextStart = Math.max(Date.now(), nextStart) + minGapMs;
      if (wait > 0) await sleep(wait);
      const result = await one(v);
      out.push(result);
      o.onResult?.(result);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency ?? 2, videos.length)) }, lane));
  return out;
}
