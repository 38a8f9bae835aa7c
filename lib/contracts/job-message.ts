/** The SQS job message: versioned JSON, validated on send and on receive. */
import { z } from 'zod';
import { JOB_ID_PATTERN } from './job-id';
import { PROFILE_ID_PATTERN } from './index-profile';
import { MAX_QUESTIONS, QuestionSchema } from './questions';
import { InferenceSettingsSchema } from './settings';
import { framesPrefix } from './s3-layout';
import { parseOrThrow } from './validate';

export const JOB_MESSAGE_SCHEMA_VERSION = 1;

export const VideoRefSchema = z.strictObject({
  bucket: z.string().min(3).max(63),
  key: z.string().min(1).max(1024),
  versionId: z.string().min(1).optional(),
  etag: z.string().min(1).optional(),
  sizeBytes: z.int().min(0).optional(),
});
export type VideoRef = z.infer<typeof VideoRefSchema>;

export const FrameRefSchema = z.strictObject({
  index: z.int().min(0),
  /** Presentation time of the decoded frame, seconds from the start. */
  timestamp: z.number().min(0),
  key: z.string().min(1),
});

export const FramesRefSchema = z.strictObject({
  bucket: z.string().min(3).max(63),
  prefix: z.string().min(1),
  manifestKey: z.string().min(1),
  count: z.int().min(1),
  width: z.int().min(1),
  height: z.int().min(1),
  format: z.enum(['jpeg', 'png']),
  /** Sampled timestamps, seconds, in frame order. */
  timestamps: z.array(z.number().min(0)).min(1),
});
export type FramesRef = z.infer<typeof FramesRefSchema>;

/** The manifest written next to the frames: what the worker loads. */
export const FrameManifestSchema = z.strictObject({
  schemaVersion: z.literal(1),
  jobId: z.string().regex(JOB_ID_PATTERN),
  video: VideoRefSchema,
  durationSeconds: z.number().positive(),
  width: z.int().min(1),
  height: z.int().min(1),
  format: z.enum(['jpeg', 'png']),
  frames: z.array(FrameRefSchema).min(1),
});
export type FrameManifest = z.infer<typeof FrameManifestSchema>;

export const JobMessageSchema = z.strictObject({
  schemaVersion: z.literal(JOB_MESSAGE_SCHEMA_VERSION),
  jobId: z.string().regex(JOB_ID_PATTERN, 'jobId must look like j-<32 hex>'),
  video: VideoRefSchema,
  frames: FramesRefSchema,
  questions: z.array(QuestionSchema).min(1).max(MAX_QUESTIONS),
  settings: InferenceSettingsSchema,
  enqueuedAt: z.iso.datetime(),
  /** Set when the message re-asks questions of an already-extracted video (`longsight ask`). */
  kind: z.enum(['extracted', 'ask']).default('extracted'),
  /** The index profile the job belongs to (absent: `ask` jobs, and messages sent before profiles); the export's partition. */
  profile: z.string().regex(PROFILE_ID_PATTERN).optional(),
});
export type JobMessage = z.infer<typeof JobMessageSchema>;
export type JobMessageInput = z.input<typeof JobMessageSchema>;

/** Parses an SQS body (string) into a job message, or throws a ContractError naming the bad field. */
export function parseJobMessage(body: string): JobMessage {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (e) {
    throw new Error(`invalid job message: body is not JSON (${(e as Error).message})`);
  }
  return parseOrThrow(JobMessageSchema, json, 'job message');
}

/**
 * The SQS body: JSON with every character outside printable ASCII written as a \uXXXX escape.
 * Real SQS accepts #x9 #xA #xD #x20–#xD7FF #xE000–#xFFFD #x10000–#x10FFFF, but other
 * implementations and proxies refuse astral-plane characters, and none accepts U+0000 or U+FFFE;
 * printable ASCII passes everywhere, and JSON.parse gives back the exact text (keys, questions,
 * anything a user can type), so any Unicode round-trips.
 */
export function serializeJobMessage(msg: JobMessageInput): string {
  return asciiJson(parseOrThrow(JobMessageSchema, msg, 'job message'));
}

export function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The frames part of a job message, from the manifest the extraction wrote (for a message re-sent or re-asked later). */
export function framesRefFromManifest(bucket: string, manifestKey: string, manifest: FrameManifest): FramesRef {
  return {
    bucket,
    prefix: framesPrefix(manifest.jobId),
    manifestKey,
    count: manifest.frames.length,
    width: manifest.width,
    height: manifest.height,
    format: manifest.format,
    timestamps: [...manifest.frames].sort((a, b) => a.index - b.index).map((f) => f.timestamp),
  };
}
