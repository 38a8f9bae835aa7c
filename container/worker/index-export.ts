/**
 * The answers export (lib/contracts/index-export.ts): one JSON line per answer of a finished job,
 * written to `index/profile=…/dt=…/<jobId>.jsonl` in the video's bucket, where Athena (a Glue
 * table) and DuckDB read the `answers` table. Records are built from what the worker records in
 * DynamoDB (the answers and the completion record), so the export equals the answers table.
 * The key is fixed per job (dt is the day the job was created): a later delivery that takes the job
 * over rewrites the same file.
 */
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import {
  ADHOC_PROFILE,
  exportDay,
  exportKey,
  serializeExport,
  videoVersion,
  type AnswerItem,
  type ExportRecord,
  type JobItem,
  type JobMessage,
} from '../../lib/contracts';
import { uniformSubset } from './frame-loader';
import type { CompletionRecord } from './job-store';

export interface ExportInput {
  msg: JobMessage;
  /** The job item as claimed (createdAt, the video's duration, the extraction time). */
  job: Partial<JobItem>;
  answers: readonly Omit<AnswerItem, 'runToken'>[];
  completion: CompletionRecord;
  /** How many jobs share one GPU (their GPU seconds are split). */
  jobsPerWorker: number;
}

const orNull = (v: number | undefined): number | null => (v === undefined ? null : v);

/** One record per answer; the job's GPU time and cost are split evenly over its answers, so SUM over any rows adds up. */
export function exportRecords(input: ExportInput): ExportRecord[] {
  const { msg, job, completion: c } = input;
  const profile = msg.profile ?? job.profile ?? ADHOC_PROFILE;
  const dt = exportDay(job.createdAt ?? msg.enqueuedAt);
  const timestamps = c.framesUsed < msg.frames.timestamps.length ? uniformSubset(msg.frames.timestamps.length, c.framesUsed).map((i) => msg.frames.timestamps[i]) : msg.frames.timestamps;
  const n = Math.max(1, input.answers.length);
  // One GPU's time, shared by the jobs a worker runs on it at once.
  const gpuSeconds = c.timings.totalMs !== undefined ? c.timings.totalMs / 1000 / input.jobsPerWorker : undefined;
  return input.answers.map((a) => ({
    job_id: msg.jobId,
    video_uri: a.videoUri,
    video_version: videoVersion(msg.video),
    video_bytes: orNull(msg.video.sizeBytes),
    video_seconds: orNull(job.frames?.durationSeconds),
    model_id: a.modelId,
    question_id: a.questionId,
    question: a.question,
    answer: a.answer,
    answered_at: a.answeredAt,
    frames: c.framesUsed,
    frame_timestamps: timestamps,
    visual_tokens: c.tokens.visual,
    prompt_tokens: a.tokens.prompt,
    generated_tokens: a.tokens.generated,
    rope_scale: c.ropeScale,
    rope_mode: c.ropeMode,
    pool_group_size: c.poolingUsed.groupSize,
    pool_stride_high: c.poolingUsed.strideHigh,
    pool_stride_low: c.poolingUsed.strideLow,
    fallback: c.fallback ?? null,
    extract_ms: orNull(job.timings?.extractMs),
    queue_ms: orNull(c.timings.queueWaitMs),
    frame_load_ms: orNull(c.timings.frameLoadMs),
    vision_ms: orNull(c.timings.visionMs),
    prefill_ms: orNull(c.timings.prefillMs),
    decode_ms: orNull(c.timings.decodeMs),
    job_total_ms: orNull(c.timings.totalMs),
    answer_latency_ms: a.latencyMs,
    gpu_seconds: gpuSeconds === undefined ? null : gpuSeconds / n,
    // The job's own cost record (its instance type's price, shared the same way), split over its answers.
    cost_usd: c.cost?.usd === undefined ? null : c.cost.usd / n,
    profile,
    dt,
  }));
}

/** Writes the job's export file; resolves with its key. */
export async function writeExport(s3: S3Client, bucket: string, records: readonly ExportRecord[]): Promise<string> {
  const first = records[0];
  const key = exportKey(first.profile, first.dt, first.job_id);
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: serializeExport(records), ContentType: 'application/x-ndjson; charset=utf-8' }));
  return key;
}
