/**
 * The model package at worker start: downloaded from its S3 prefix (LONGSIGHT_MODEL_URI) into a
 * local cache directory, and skipped when the cache already holds the same objects. "The same" is
 * judged by S3's own content hashes: every object's ETag and size are recorded in a stamp file next
 * to the download and compared with a fresh listing, so a re-uploaded package is fetched again
 * while a restart on a warm instance reuses the files (a 7B package is ~15 GB).
 */
import { createWriteStream, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join, relative, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { Logger } from '../../lib/log';
import { mapLimit } from './frame-loader';

const STAMP = '.longsight-download.json';

interface RemoteObject {
  key: string;
  rel: string;
  size: number;
  etag: string;
}

interface Stamp {
  uri: string;
  objects: { rel: string; size: number; etag: string }[];
}

export function parseS3Uri(uri: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(uri);
  if (!m) throw new Error(`not an S3 URI: "${uri}" (expected s3://bucket/prefix/)`);
  const prefix = m[2] && !m[2].endsWith('/') ? `${m[2]}/` : m[2];
  return { bucket: m[1], prefix };
}

async function listPackage(s3: S3Client, bucket: string, prefix: string): Promise<RemoteObject[]> {
  const out: RemoteObject[] = [];
  let token: string | undefined;
  do {
    const r = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of r.Contents ?? []) {
      if (!o.Key || o.Key.endsWith('/')) continue;
      const rel = o.Key.slice(prefix.length);
      // Never write outside the cache directory, whatever the keys say.
      if (!rel || rel.split('/').some((p) => p === '..' || p === '')) continue;
      out.push({ key: o.Key, rel, size: o.Size ?? 0, etag: (o.ETag ?? '').replace(/"/g, '') });
    }
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
  } while (token);
  return out.sort((a, b) => a.rel.localeCompare(b.rel));
}

function stampMatches(dir: string, uri: string, objects: RemoteObject[]): boolean {
  try {
    const stamp = JSON.parse(readFileSync(join(dir, STAMP), 'utf8')) as Stamp;
    if (stamp.uri !== uri || stamp.objects.length !== objects.length) return false;
    return objects.every((o, i) => {
      const s = stamp.objects[i];
      return s.rel === o.rel && s.etag === o.etag && s.size === o.size && statSync(join(dir, o.rel)).size === o.size;
    });
  } catch {
    return false;
  }
}

/** Local directory of the package at `uri`, downloading what is missing or changed. */
export async function ensureModelPackage(s3: S3Client, uri: string, cacheRoot: string, log: Logger): Promise<{ dir: string; downloaded: boolean; bytes: number }> {
  const { bucket, prefix } = parseS3Uri(uri);
  uri = `s3://${bucket}/${prefix}`; // one spelling: with or without the trailing slash is the same package
  const dir = join(cacheRoot, createHash('sha256').update(uri).digest('hex').slice(0, 16));
  const objects = await listPackage(s3, bucket, prefix);
  if (objects.length === 0) throw new Error(`no model package at ${uri}: the prefix holds no objects (upload the output of \`longsight convert\` there)`);
  if (!objects.some((o) => o.rel === 'longsight-model.json')) throw new Error(`${uri} holds no longsight-model.json: not a converted Longsight model package`);
  const total = objects.reduce((s, o) => s + o.size, 0);
  if (stampMatches(dir, uri, objects)) {
    log.info('model package already cached', { uri, dir, bytes: total });
    return { dir, downloaded: false, bytes: total };
  }
  rmSync(join(dir, STAMP), { force: true });
  mkdirSync(dir, { recursive: true });
  let done = 0;
  let lastLog = Date.now();
  log.info('downloading the model package', { uri, dir, files: objects.length, bytes: total });
  await mapLimit(objects, 4, async (o) => {
    const target = join(dir, ...o.rel.split('/'));
    if (relative(dir, target).startsWith(`..${sep}`)) throw new Error(`refusing to write ${o.key} outside ${dir}`);
    mkdirSync(dirname(target), { recursive: true });
    const tmp = `${target}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.part`; // several tasks may share the cache
    const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: o.key }));
    const body = r.Body as Readable;
    body.on('data', (chunk: Buffer) => {
      done += chunk.length;
      if (Date.now() - lastLog > 5000) {
        lastLog = Date.now();
        log.info('model download progress', { percent: Math.round((100 * done) / Math.max(1, total)), bytes: done, of: total });
      }
    });
    await pipeline(body, createWriteStream(tmp));
    const size = statSync(tmp).size;
    if (size !== o.size) throw new Error(`download of s3://${bucket}/${o.key} is ${size} bytes, expected ${o.size}`);
    renameSync(tmp, target);
  });
  const stamp: Stamp = { uri, objects: objects.map(({ rel, size, etag }) => ({ rel, size, etag })) };
  writeFileSync(join(dir, STAMP), JSON.stringify(stamp, null, 1));
  log.info('model package downloaded', { dir, bytes: total });
  return { dir, downloaded: true, bytes: total };
}
