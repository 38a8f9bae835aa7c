/**
 * What is already in a bucket: the objects under a prefix, page by page (ListObjectsV2, or
 * ListObjectVersions on a versioned bucket, whose current version ids the job ids need), or the
 * rows of an S3 Inventory report (its manifest.json and CSV files) for buckets too large to list.
 * Each object is classified the way the extraction Lambda would take it (a video, or why not).
 */
import { gunzipSync } from 'node:zlib';
import { GetBucketVersioningCommand, GetObjectCommand, ListObjectsV2Command, ListObjectVersionsCommand, type S3Client } from '@aws-sdk/client-s3';
import { FRAMES_PREFIX, INDEX_PREFIX } from '../../lib/contracts';
import { decodeS3Key, skipReason } from '../../lambda/extract-frames/s3-event';

export interface ListedObject {
  bucket: string;
  key: string;
  size: number;
  /** Without quotes. */
  etag: string;
  /** The current version's id, on a versioned bucket. */
  versionId?: string;
}

export interface S3Location {
  bucket: string;
  /** A prefix (may be empty) or, for an inventory manifest, its key. */
  key: string;
}

/** `s3://bucket[/prefix]` → { bucket, key }. */
export function parseS3Uri(uri: string, what = 'an S3 location'): S3Location {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(uri);
  if (!m) throw new Error(`${JSON.stringify(uri)} is not ${what} (s3://BUCKET[/PREFIX])`);
  return { bucket: m[1], key: m[2] ?? '' };
}

/** Why the extraction would not take this key, or undefined for a video. */
export function notAVideo(key: string): string | undefined {
  return skipReason(key);
}

/** Whether S3 keeps versions in this bucket (a local server without versioning says no). */
export async function isVersioned(s3: S3Client, bucket: string): Promise<boolean> {
  try {
    const r = await s3.send(new GetBucketVersioningCommand({ Bucket: bucket }));
    return r.Status === 'Enabled' || r.Status === 'Suspended';
  } catch {
    return false;
  }
}

const unquote = (etag: string | undefined) => (etag ?? '').replace(/"/g, '');

/** Longsight's own prefixes: never uploads, and possibly millions of objects (frames), so never listed. */
export const OWN_PREFIXES = [FRAMES_PREFIX, INDEX_PREFIX];

/** One listing page: objects, and with a delimiter the sub-prefixes. */
interface Page {
  objects: ListedObject[];
  prefixes: string[];
}

/** The pages of one listing (ListObjectsV2, or ListObjectVersions keeping current versions). */
async function* pagesOf(s3: S3Client, bucket: string, prefix: string, versioned: boolean, delimiter?: string): AsyncGenerator<Page> {
  if (!versioned) {
    let token: string | undefined;
    do {
      const r = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix || undefined, Delimiter: delimiter, ContinuationToken: token }));
      yield { objects: (r.Contents ?? []).map((o) => ({ bucket, key: o.Key!, size: o.Size ?? 0, etag: unquote(o.ETag) })), prefixes: (r.CommonPrefixes ?? []).map((p) => p.Prefix!) };
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return;
  }
  let keyMarker: string | undefined;
  let versionMarker: string | undefined;
  do {
    const r = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: prefix || undefined, Delimiter: delimiter, KeyMarker: keyMarker, VersionIdMarker: versionMarker }));
    // A key whose latest entry is a delete marker is gone: its older versions are not listed as current.
    const objects = (r.Versions ?? [])
      .filter((v) => v.IsLatest)
      .map((v) => ({ bucket, key: v.Key!, size: v.Size ?? 0, etag: unquote(v.ETag), ...(v.VersionId && v.VersionId !== 'null' ? { versionId: v.VersionId } : {}) }));
    yield { objects, prefixes: (r.CommonPrefixes ?? []).map((p) => p.Prefix!) };
    keyMarker = r.IsTruncated ? r.NextKeyMarker : undefined;
    versionMarker = r.IsTruncated ? r.NextVersionIdMarker : undefined;
  } while (keyMarker);
}

/**
 * The objects under `prefix`, one page (up to 1000) at a time; current versions only. At the top of
 * the bucket, the first level is listed with a delimiter so frames/ and index/ are never walked.
 */
export async function* listObjects(s3: S3Client, bucket: string, prefix: string, versioned: boolean): AsyncGenerator<ListedObject[]> {
  if (OWN_PREFIXES.some((p) => prefix.startsWith(p))) throw new Error(`s3://${bucket}/${prefix} is under ${OWN_PREFIXES.join(' or ')}, where Longsight writes: nothing there is indexed`);
  if (prefix !== '') {
    for await (const page of pagesOf(s3, bucket, prefix, versioned)) yield page.objects;
    return;
  }
  const folders: string[] = [];
  for await (const page of pagesOf(s3, bucket, '', versioned, '/')) {
    folders.push(...page.prefixes.filter((p) => !OWN_PREFIXES.includes(p)));
    yield page.objects;
  }
  for (const folder of folders) for await (const page of pagesOf(s3, bucket, folder, versioned)) yield page.objects;
}

/** The parts of an S3 Inventory manifest.json that locate its data files. */
interface InventoryManifest {
  sourceBucket: string;
  destinationBucket: string;
  fileFormat: string;
  fileSchema: string;
  files: { key: string }[];
}

async function readObject(s3: S3Client, bucket: string, key: string): Promise<Buffer> {
  const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await r.Body!.transformToByteArray());
}

/** One CSV line of an inventory file: every field quoted, "" inside a field. */
export function parseCsvLine(line: string): string[] {
  const fields: string[] = [];
  let i = 0;
  while (i <= line.length) {
    if (line[i] === '"') {
      let v = '';
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q < 0) throw new Error(`unterminated quoted field in inventory line: ${line.slice(0, 80)}`);
        v += line.slice(i, q);
        if (line[q + 1] === '"') {
          v += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      fields.push(v);
    } else {
      const c = line.indexOf(',', i);
      fields.push(line.slice(i, c < 0 ? line.length : c));
      i = c < 0 ? line.length : c;
    }
    if (line[i] !== ',') break;
    i++;
  }
  return fields;
}

/**
 * The current objects an S3 Inventory report lists under `prefix` (CSV format; keys in it are
 * URL-encoded, as S3 writes them), one data file at a time.
 */
export async function* listInventory(s3: S3Client, manifest: S3Location, prefix: string): AsyncGenerator<ListedObject[]> {
  let m: InventoryManifest;
  try {
    m = JSON.parse((await readObject(s3, manifest.bucket, manifest.key)).toString('utf8')) as InventoryManifest;
  } catch (e) {
    throw new Error(`cannot read the inventory manifest s3://${manifest.bucket}/${manifest.key}: ${(e as Error).message}`);
  }
  if (m.fileFormat !== 'CSV') throw new Error(`inventory s3://${manifest.bucket}/${manifest.key} is in ${m.fileFormat} format: only CSV inventories are read (set the inventory's output format to CSV)`);
  const columns = m.fileSchema.split(',').map((c) => c.trim());
  const col = (name: string) => columns.indexOf(name);
  const [iBucket, iKey, iVersion, iLatest, iDeleted, iSize, iEtag] = ['Bucket', 'Key', 'VersionId', 'IsLatest', 'IsDeleteMarker', 'Size', 'ETag'].map(col);
  if (iKey < 0 || iEtag < 0) throw new Error(`inventory s3://${manifest.bucket}/${manifest.key} lacks the Key or ETag field (its schema: ${m.fileSchema}); add ETag to the inventory's optional fields`);
  const filesBucket = m.destinationBucket.replace(/^arn:aws[a-z-]*:s3:::/, '');
  for (const file of m.files) {
    const raw = await readObject(s3, filesBucket, file.key);
    const text = (file.key.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8');
    const page: ListedObject[] = [];
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      const f = parseCsvLine(line.replace(/\r$/, ''));
      if (iLatest >= 0 && f[iLatest] !== 'true') continue;
      if (iDeleted >= 0 && f[iDeleted] === 'true') continue;
      const key = decodeS3Key(f[iKey]);
      if (!key.startsWith(prefix)) continue;
      const versionId = iVersion >= 0 && f[iVersion] && f[iVersion] !== 'null' ? f[iVersion] : undefined;
      page.push({ bucket: iBucket >= 0 ? f[iBucket] : m.sourceBucket, key, size: iSize >= 0 ? Number(f[iSize]) || 0 : 0, etag: unquote(f[iEtag]), ...(versionId ? { versionId } : {}) });
    }
    yield page;
  }
}
