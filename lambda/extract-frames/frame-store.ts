/**
 * Frames and manifest in S3 under frames/<jobId>/. Keys are fixed by index, so a retried attempt
 * overwrites; the manifest is written last and lists exactly this attempt's frames; objects a
 * failed attempt left beyond them are deleted afterwards.
 */
import { DeleteObjectsCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { frameKey, framesPrefix, manifestKey } from '../../lib/contracts/s3-layout';
import { FrameManifestSchema, type FrameManifest, type VideoRef } from '../../lib/contracts/job-message';
import { parseOrThrow } from '../../lib/contracts/validate';
import { mapLimit } from '../../lib/map-limit';
import type { FrameFormat } from '../../lib/preprocess';

/** A frame's timestamp as the manifest records it (microseconds). */
export const manifestTimestamp = (seconds: number): number => Number(seconds.toFixed(6));

export interface StoredFrames {
  manifest: FrameManifest;
  manifestKey: string;
  prefix: string;
  /** Leftover objects of an earlier attempt that were removed. */
  removed: string[];
}

export async function storeFrames(
  s3: S3Client,
  input: {
    bucket: string;
    jobId: string;
    video: VideoRef;
    durationSeconds: number;
    size: number;
    format: FrameFormat;
    frames: readonly { timestamp: number; data: Buffer }[];
    concurrency?: number;
  },
): Promise<StoredFrames> {
  const ext = input.format === 'jpeg' ? 'jpg' : 'png';
  const contentType = input.format === 'jpeg' ? 'image/jpeg' : 'image/png';
  const entries = input.frames.map((f, index) => ({ index, timestamp: manifestTimestamp(f.timestamp), key: frameKey(input.jobId, index, ext), data: f.data }));
  await mapLimit(entries, input.concurrency ?? 16, async (e) => {
    await s3.send(new PutObjectCommand({ Bucket: input.bucket, Key: e.key, Body: e.data, ContentType: contentType }));
  });
  const manifest = parseOrThrow(
    FrameManifestSchema,
    {
      schemaVersion: 1,
      jobId: input.jobId,
      video: input.video,
      durationSeconds: input.durationSeconds,
      width: input.size,
      height: input.size,
      format: input.format,
      frames: entries.map(({ index, timestamp, key }) => ({ index, timestamp, key })),
    },
    'frame manifest',
  );
  const mKey = manifestKey(input.jobId);
  await s3.send(new PutObjectCommand({ Bucket: input.bucket, Key: mKey, Body: JSON.stringify(manifest), ContentType: 'application/json' }));

  // Leftovers of a failed attempt (more frames, or the other image format) never appear in the
  // manifest; remove them so the prefix holds exactly this job's frames.
  const keep = new Set([mKey, ...entries.map((e) => e.key)]);
  const prefix = framesPrefix(input.jobId);
  const stale: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: input.bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) if (o.Key && !keep.has(o.Key)) stale.push(o.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  for (let i = 0; i < stale.length; i += 1000) {
    await s3.send(new DeleteObjectsCommand({ Bucket: input.bucket, Delete: { Objects: stale.slice(i, i + 1000).map((Key) => ({ Key })), Quiet: true } }));
  }
  return { manifest, manifestKey: mKey, prefix, removed: stale };
}
