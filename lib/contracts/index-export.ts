/**
 * The answers export: every finished job writes one JSON line per answer to
 * `index/profile=<profile>/dt=<YYYY-MM-DD>/<jobId>.jsonl` in the video bucket (dt: the UTC day the
 * job was created, so a job's file has one key whatever delivery writes it). The same table, named
 * `answers` with the same columns, is read through Athena (a Glue table over `index/`, partitioned
 * by profile and dt) and locally through DuckDB over the exported files: one SQL works on both.
 *
 * Columns are Hive types (what Glue stores); EXPORT_COLUMNS is the one list the Glue table, the
 * DuckDB view and the record schema are built from or checked against.
 */
import { z } from 'zod';
import { JOB_ID_PATTERN } from './job-id';
import { ADHOC_PROFILE, PROFILE_ID_PATTERN } from './index-profile';
import { INDEX_PREFIX } from './s3-layout';

export const EXPORT_TABLE_NAME = 'answers';

export type ExportColumnType = 'string' | 'bigint' | 'int' | 'double' | 'array<double>';

export interface ExportColumn {
  name: string;
  type: ExportColumnType;
  comment: string;
}

/** Data columns, in table order. */
export const EXPORT_DATA_COLUMNS: readonly ExportColumn[] = [
  { name: 'job_id', type: 'string', comment: 'job id (j-<32 hex>)' },
  { name: 'video_uri', type: 'string', comment: 's3://bucket/key of the video' },
  { name: 'video_version', type: 'string', comment: 'v:<S3 version id>, or e:<ETag> on an unversioned bucket' },
  { name: 'video_bytes', type: 'bigint', comment: 'size of the video object' },
  { name: 'video_seconds', type: 'double', comment: 'duration of the video' },
  { name: 'model_id', type: 'string', comment: 'model that answered' },
  { name: 'question_id', type: 'string', comment: 'q-<12 hex>, stable per question text' },
  { name: 'question', type: 'string', comment: 'question text' },
  { name: 'answer', type: 'string', comment: 'answer text' },
  { name: 'answered_at', type: 'string', comment: 'ISO 8601 time the answers were recorded' },
  { name: 'frames', type: 'int', comment: 'frames the model saw' },
  { name: 'frame_timestamps', type: 'array<double>', comment: 'seconds from the start of each sampled frame' },
  { name: 'visual_tokens', type: 'int', comment: 'visual tokens after pooling' },
  { name: 'prompt_tokens', type: 'int', comment: "this answer's prompt tokens" },
  { name: 'generated_tokens', type: 'int', comment: "this answer's generated tokens" },
  { name: 'rope_scale', type: 'double', comment: 's = L_test / L_v applied to RoPE (1 = unchanged)' },
  { name: 'rope_mode', type: 'string', comment: 'visual-yarn, language-yarn, position-interpolation or off' },
  { name: 'pool_group_size', type: 'int', comment: 'progressive pooling K' },
  { name: 'pool_stride_high', type: 'int', comment: 'progressive pooling s_h' },
  { name: 'pool_stride_low', type: 'int', comment: 'progressive pooling s_l' },
  { name: 'fallback', type: 'string', comment: 'why the job retried with the fallback settings, if it did' },
  { name: 'extract_ms', type: 'double', comment: 'frame extraction (Lambda)' },
  { name: 'queue_ms', type: 'double', comment: 'job message enqueued to claimed by a worker' },
  { name: 'frame_load_ms', type: 'double', comment: 'frames fetched and decoded by the worker' },
  { name: 'vision_ms', type: 'double', comment: 'vision tower' },
  { name: 'prefill_ms', type: 'double', comment: 'decoder prefill' },
  { name: 'decode_ms', type: 'double', comment: 'decoder generation' },
  { name: 'job_total_ms', type: 'double', comment: 'claim to DONE on the worker (the GPU time of the job)' },
  { name: 'answer_latency_ms', type: 'double', comment: "this answer's generation" },
  { name: 'gpu_seconds', type: 'double', comment: "this answer's share of the job's GPU time (SUM gives the GPU time)" },
  { name: 'cost_usd', type: 'double', comment: "this answer's share of the job's GPU cost at the on-demand price (SUM gives the cost); null where no price is known" },
];

/** Partition columns (the path's profile=…/dt=…), after the data columns in the table. */
export const EXPORT_PARTITION_COLUMNS: readonly ExportColumn[] = [
  { name: 'profile', type: 'string', comment: `index profile id (p-<12 hex>), or ${ADHOC_PROFILE} for jobs outside any profile` },
  { name: 'dt', type: 'string', comment: 'UTC day the job was created (YYYY-MM-DD)' },
];

/** Every column of the `answers` table, in table order (data columns, then partition columns). */
export const EXPORT_COLUMNS: readonly ExportColumn[] = [...EXPORT_DATA_COLUMNS, ...EXPORT_PARTITION_COLUMNS];

const ms = z.number().min(0).nullable();
const count = z.int().min(0);

/** One exported line. The partition columns are in the line too, so a file read alone is whole. */
export const ExportRecordSchema = z.strictObject({
  job_id: z.string().regex(JOB_ID_PATTERN),
  video_uri: z.string().startsWith('s3://'),
  video_version: z.string().regex(/^[ve]:.+/),
  video_bytes: count.nullable(),
  video_seconds: z.number().min(0).nullable(),
  model_id: z.string().min(1),
  question_id: z.string().regex(/^q-[0-9a-f]{12}$/),
  question: z.string(),
  answer: z.string(),
  answered_at: z.iso.datetime(),
  frames: count,
  frame_timestamps: z.array(z.number().min(0)),
  visual_tokens: count,
  prompt_tokens: count,
  generated_tokens: count,
  rope_scale: z.number().positive(),
  rope_mode: z.string(),
  pool_group_size: count,
  pool_stride_high: count,
  pool_stride_low: count,
  fallback: z.string().nullable(),
  extract_ms: ms,
  queue_ms: ms,
  frame_load_ms: ms,
  vision_ms: ms,
  prefill_ms: ms,
  decode_ms: ms,
  job_total_ms: ms,
  answer_latency_ms: ms,
  gpu_seconds: z.number().min(0).nullable(),
  cost_usd: z.number().min(0).nullable(),
  profile: z.union([z.string().regex(PROFILE_ID_PATTERN), z.literal(ADHOC_PROFILE)]),
  dt: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
});
export type ExportRecord = z.infer<typeof ExportRecordSchema>;

/** `index/profile=<profile>/dt=<YYYY-MM-DD>/<jobId>.jsonl`. */
export function exportKey(profile: string, dt: string, jobId: string): string {
  return `${exportPartitionPrefix(profile, dt)}${jobId}.jsonl`;
}

export function exportPartitionPrefix(profile: string, dt: string): string {
  return `${INDEX_PREFIX}profile=${profile}/dt=${dt}/`;
}

/** The partition of an export key, or undefined when the key is not one. */
export function parseExportKey(key: string): { profile: string; dt: string; jobId: string } | undefined {
  const m = /^index\/profile=([^/]+)\/dt=(\d{4}-\d{2}-\d{2})\/(j-[0-9a-f]{32})\.jsonl$/.exec(key);
  return m ? { profile: m[1], dt: m[2], jobId: m[3] } : undefined;
}

/** The UTC day of an ISO time: the dt partition of a job created then. */
export function exportDay(iso: string): string {
  return new Date(iso).toISOString().slice(0, 10);
}

/** The export file's body: one JSON line per record, each validated. */
export function serializeExport(records: readonly ExportRecord[]): string {
  return records.map((r) => JSON.stringify(ExportRecordSchema.parse(r))).join('\n') + '\n';
}
