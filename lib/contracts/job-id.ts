/**
 * The job id rule: deterministic from the video version (bucket, key, version id or ETag) and the
 * index profile (index-profile.ts), so a duplicated S3 event, a rerun of `longsight index` or both
 * at once make exactly one job per (video version, profile), and a new profile (another model,
 * other settings or questions) makes a new job for the same video.
 *
 * Migration (profiles added to the rule): jobs created before keep their ids (the rule without a
 * profile) and stay readable (`longsight status/answers`), but the new rule does not find them,
 * so the first `longsight index` after the upgrade indexes those videos once more under the
 * environment's profile (`--dry-run` counts them and prices the work first). Their answers were
 * never in the export (index/), which starts with jobs finished after the upgrade.
 */
import { createHash } from 'node:crypto';
import { PROFILE_ID_PATTERN } from './index-profile';

export interface VideoIdentity {
  bucket: string;
  key: string;
  /** S3 version id; on an unversioned bucket, absent (or "null"), and the ETag stands in. */
  versionId?: string;
  etag?: string;
}

/** The version part of a video's identity: `v:<version id>`, or `e:<etag>` on an unversioned bucket. */
export function videoVersion(v: VideoIdentity): string {
  const version = v.versionId && v.versionId !== 'null' ? `v:${v.versionId}` : v.etag ? `e:${v.etag.replace(/"/g, '')}` : '';
  if (!version) throw new Error(`cannot derive a job id for s3://${v.bucket}/${v.key}: neither versionId nor etag given`);
  return version;
}

/** `profile`: the index profile's id (`p-<12 hex>`). */
export function jobIdFor(v: VideoIdentity, profile: string): string {
  if (!PROFILE_ID_PATTERN.test(profile)) throw new Error(`cannot derive a job id for s3://${v.bucket}/${v.key}: "${profile}" is not an index profile id (p-<12 hex>)`);
  const digest = createHash('sha256').update(`${v.bucket}\n${v.key}\n${videoVersion(v)}\n${profile}`).digest('hex');
  return `j-${digest.slice(0, 32)}`;
}

export const JOB_ID_PATTERN = /^j-[0-9a-f]{32}$/;

export function videoUri(bucket: string, key: string): string {
  return `s3://${bucket}/${key}`;
}
