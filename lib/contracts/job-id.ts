/** The job id rule: deterministic from bucket, key and version (or ETag), so a duplicated S3 event is one job. */
import { createHash } from 'node:crypto';

export interface VideoIdentity {
  bucket: string;
  key: string;
  /** S3 version id; on an unversioned bucket, absent (or "null"), and the ETag stands in. */
  versionId?: string;
  etag?: string;
}

export function jobIdFor(v: VideoIdentity): string {
  const version = v.versionId && v.versionId !== 'null' ? `v:${v.versionId}` : v.etag ? `e:${v.etag.replace(/"/g, '')}` : '';
  if (!version) throw new Error(`cannot derive a job id for s3://${v.bucket}/${v.key}: neither versionId nor etag given`);
  const digest = createHash('sha256').update(`${v.bucket}\n${v.key}\n${version}`).digest('hex');
  return `j-${digest.slice(0, 32)}`;
}

export const JOB_ID_PATTERN = /^j-[0-9a-f]{32}$/;

export function videoUri(bucket: string, key: string): string {
  return `s3://${bucket}/${key}`;
}
