/**
 * The S3 ObjectCreated notification as S3 delivers it to Lambda: one or more records, keys
 * URL-encoded form-style (a space arrives as '+', a literal '+' as %2B), eTag without quotes,
 * versionId only on versioned buckets. Also decides which objects the Lambda must not process.
 */
import { z } from 'zod';
import { isUnderFrames, isUnderIndex, isVideoKey, SIDECAR_SUFFIX } from '../../lib/contracts/s3-layout';

const RecordSchema = z.object({
  eventSource: z.literal('aws:s3'),
  eventName: z.string(),
  eventTime: z.string().optional(),
  s3: z.object({
    bucket: z.object({ name: z.string().min(1) }),
    object: z.object({
      key: z.string().min(1),
      size: z.number().int().min(0).optional(),
      eTag: z.string().optional(),
      versionId: z.string().optional(),
      sequencer: z.string().optional(),
    }),
  }),
});

export interface S3ObjectEvent {
  eventName: string;
  eventTime?: string;
  bucket: string;
  /** Decoded key, as stored in S3. */
  key: string;
  size?: number;
  /** Without quotes, as in the notification. */
  etag?: string;
  versionId?: string;
  sequencer?: string;
}

export interface ParsedS3Event {
  objects: S3ObjectEvent[];
  /** Records that are not S3 ObjectCreated records (with why), e.g. ObjectRemoved or a malformed record. */
  unusable: { index: number; why: string }[];
}

/** S3 encodes notification keys like an HTML form: '+' is a space, %XX a byte of UTF-8. */
export function decodeS3Key(raw: string): string {
  return decodeURIComponent(raw.replace(/\+/g, ' '));
}

export function parseS3Event(event: unknown): ParsedS3Event {
  const out: ParsedS3Event = { objects: [], unusable: [] };
  const records = (event as { Records?: unknown })?.Records;
  // S3 sends {"Event":"s3:TestEvent"} once when a notification is configured: nothing to do.
  if (!Array.isArray(records)) return out;
  records.forEach((raw, index) => {
    const parsed = RecordSchema.safeParse(raw);
    if (!parsed.success) {
      out.unusable.push({ index, why: `not an S3 event record: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}` });
      return;
    }
    const r = parsed.data;
    if (!r.eventName.startsWith('ObjectCreated:')) {
      out.unusable.push({ index, why: `event ${r.eventName} is not an ObjectCreated event` });
      return;
    }
    let key: string;
    try {
      key = decodeS3Key(r.s3.object.key);
    } catch {
      out.unusable.push({ index, why: `key ${JSON.stringify(r.s3.object.key)} is not valid URL encoding` });
      return;
    }
    out.objects.push({
      eventName: r.eventName,
      eventTime: r.eventTime,
      bucket: r.s3.bucket.name,
      key,
      size: r.s3.object.size,
      etag: r.s3.object.eTag?.replace(/"/g, '') || undefined,
      // Unversioned buckets may say "null"; the job id then uses the ETag.
      versionId: r.s3.object.versionId && r.s3.object.versionId !== 'null' ? r.s3.object.versionId : undefined,
      sequencer: r.s3.object.sequencer,
    });
  });
  return out;
}

/** Why an object must be left alone, or undefined when it is a video to process. */
export function skipReason(key: string): string | undefined {
  if (isUnderFrames(key)) return 'under frames/ (written by Longsight itself)';
  if (isUnderIndex(key)) return 'under index/ (the answers export, written by Longsight itself)';
  if (key.toLowerCase().endsWith(SIDECAR_SUFFIX)) return 'a questions sidecar (read with its video)';
  if (key.endsWith('/')) return 'a folder marker';
  if (!isVideoKey(key)) return 'not a video suffix';
  return undefined;
}

/** What the builder needs to know about a stored object. */
export interface StoredObject {
  bucket: string;
  key: string;
  size: number;
  /** With or without quotes. */
  etag: string;
  versionId?: string;
}

/** S3's key encoding in notifications: like encodeURIComponent, but a space becomes '+' and '/' stays. */
export function encodeEventKey(key: string): string {
  return encodeURIComponent(key).replace(/%20/g, '+').replace(/%2F/g, '/');
}

let sequence = 0;

/**
 * One record of the ObjectCreated notification exactly as S3 sends it
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html).
 * The local pipeline uses it to stand in for S3's notification, which the embedded server lacks.
 */
export function s3EventRecord(obj: StoredObject, eventName = 'ObjectCreated:Put', region = process.env.AWS_REGION ?? 'us-east-1') {
  sequence += 1;
  return {
    eventVersion: '2.1',
    eventSource: 'aws:s3',
    awsRegion: region,
    eventTime: new Date().toISOString(),
    eventName,
    userIdentity: { principalId: 'AWS:AIDAEXAMPLE' },
    requestParameters: { sourceIPAddress: '127.0.0.1' },
    responseElements: { 'x-amz-request-id': `LOCAL${sequence}`, 'x-amz-id-2': 'local' },
    s3: {
      s3SchemaVersion: '1.0',
      configurationId: 'longsight-extract',
      bucket: { name: obj.bucket, ownerIdentity: { principalId: 'LOCAL' }, arn: `arn:aws:s3:::${obj.bucket}` },
      object: {
        key: encodeEventKey(obj.key),
        size: obj.size,
        eTag: obj.etag.replace(/"/g, ''),
        ...(obj.versionId && obj.versionId !== 'null' ? { versionId: obj.versionId } : {}),
        sequencer: (Date.now() * 1000 + sequence).toString(16).toUpperCase(),
      },
    },
  };
}

/** The notification for one or more stored objects: `{ Records: [...] }`. */
export function buildS3Event(...objects: StoredObject[]) {
  return { Records: objects.map((o) => s3EventRecord(o)) };
}
