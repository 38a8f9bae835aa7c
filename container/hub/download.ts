/**
 * One file of a pinned commit, downloaded with the Hub client (`resolve/<commit>/<path>`: its
 * ETag, then the bytes, as a byte range when resuming), verified, and only then put in place.
 *
 *  - Resumable: bytes land in `<file>.incomplete`, with `<file>.incomplete.json` recording the
 *    ETag they came with. An interrupted download leaves both; the next pull asks for the rest
 *    (`Range: bytes=<have>-`) if the ETag is unchanged, and starts over otherwise (or when the
 *    server answers a range request with the whole file).
 *  - Verified: an LFS file against the sha256 the repository lists for it, any other file against
 *    its git blob id. A mismatch deletes what was downloaded and fails with both hashes.
 *
 * Plain HTTP byte ranges, not the Hub's Xet chunk protocol (`xet: false`): the resolve route
 * serves every file, and a byte range is what an interrupted download needs to continue.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { downloadFile, fileDownloadInfo, HubApiError } from '@huggingface/hub';
import { PullError, type HubAccess, type RepoFile } from './hub-files';

export interface DownloadProgress {
  /** Bytes of this file on disk so far (resumed bytes included). */
  done: number;
  total: number;
}

/** sha256 for LFS files, the git blob id otherwise: the hash the repository lists. */
function hasherFor(f: RepoFile): { hash: Hash; expected: string; kind: 'sha256' | 'git blob id' } {
  if (f.sha256) return { hash: createHash('sha256'), expected: f.sha256, kind: 'sha256' };
  const hash = createHash('sha1');
  hash.update(`blob ${f.size}\0`);
  return { hash, expected: f.gitOid ?? '', kind: 'git blob id' };
}

async function hashFile(file: string, into: Hash): Promise<void> {
  for await (const chunk of createReadStream(file)) into.update(chunk as Buffer);
}

/** Whether `dest` already holds the verified file (size, then hash). */
export async function isComplete(dest: string, f: RepoFile): Promise<boolean> {
  if (!existsSync(dest) || statSync(dest).size !== f.size) return false;
  const h = hasherFor(f);
  await hashFile(dest, h.hash);
  return h.hash.digest('hex') === h.expected;
}

const MB = 1024 * 1024;

/**
 * Downloads `f` of `repo` at `commit` to `dest` (verified; a verified `dest` is kept as is).
 * `onProgress` after every chunk. Throws PullError on an interruption (what was downloaded stays
 * for the next attempt) or a hash mismatch (nothing is kept).
 */
export async function downloadVerified(repo: string, commit: string, f: RepoFile, dest: string, access: HubAccess, onProgress: (p: DownloadProgress) => void = () => undefined): Promise<'downloaded' | 'resumed' | 'present'> {
  if (await isComplete(dest, f)) {
    onProgress({ done: f.size, total: f.size });
    return 'present';
  }
  mkdirSync(dirname(dest), { recursive: true });
  const partial = `${dest}.incomplete`;
  const meta = `${partial}.json`;
  // The last response the client got: whether a range request was honoured (206) or not.
  let last: Response | undefined;
  const fetchSeen: typeof fetch = async (input, init) => {
    last = await (access.fetch ?? fetch)(input, init);
    return last;
  };
  const params = { repo: { type: 'model' as const, name: repo }, path: f.path, revision: commit, hubUrl: access.hubUrl, accessToken: access.accessToken, fetch: fetchSeen };

  let info;
  try {
    info = await fileDownloadInfo(params);
  } catch (e) {
    throw new PullError(`cannot download ${f.path} of ${repo}: ${e instanceof HubApiError ? `HTTP ${e.statusCode} ${e.message}` : (e as Error).message}`, { cause: e });
  }
  if (!info) throw new PullError(`${f.path} is listed in ${repo}@${commit.slice(0, 7)} but the Hub has no such file`);
  if (info.size !== f.size) throw new PullError(`${f.path}: the Hub serves ${info.size} bytes but lists ${f.size}`);

  // Resume only bytes that came with the same ETag (the same file), and never more than the file.
  let have = 0;
  if (existsSync(partial)) {
    const recorded = existsSync(meta) ? (JSON.parse(readFileSync(meta, 'utf8')) as { etag?: string }).etag : undefined;
    const size = statSync(partial).size;
    have = recorded === info.etag && size <= f.size ? size : 0;
  }
  if (have === 0) rmSync(partial, { force: true });
  writeFileSync(meta, JSON.stringify({ etag: info.etag, size: f.size, path: f.path, commit }));

  const blob = await downloadFile({ ...params, downloadInfo: info, xet: false });
  if (!blob) throw new PullError(`${f.path}: the Hub has no such file at ${commit.slice(0, 7)}`);
  const check = hasherFor(f);
  if (have > 0) await hashFile(partial, check.hash);
  // (A partial with every byte is only waiting for its check: a crash between download and rename.)
  let done = have;
  onProgress({ done, total: f.size });
  if (have < f.size) {
    const rest = await fetchRest(blob, have, partial, { onChunk: (chunk) => {
      check.hash.update(chunk);
      done += chunk.length;
      onProgress({ done, total: f.size });
    }, rangeHonoured: () => !last || last.status === 206 });
    if (rest === 'range-ignored') {
      rmSync(partial, { force: true });
      return downloadVerified(repo, commit, f, dest, access, onProgress);
    }
    if (rest instanceof Error) {
      throw new PullError(`download of ${f.path} interrupted after ${(done / MB).toFixed(1)} of ${(f.size / MB).toFixed(1)} MB (${rest.message}): run the same command again to resume`, { cause: rest });
    }
  }
  if (done !== f.size) {
    throw new PullError(`download of ${f.path} ended early at ${(done / MB).toFixed(1)} of ${(f.size / MB).toFixed(1)} MB: run the same command again to resume`);
  }
  const got = check.hash.digest('hex');
  if (got !== check.expected) {
    rmSync(partial, { force: true });
    rmSync(meta, { force: true });
    throw new PullError(
      `${f.path} of ${repo}@${commit.slice(0, 7)} failed verification: ${check.kind} ${got}, expected ${check.expected}. The download was deleted; pull again (a proxy or mirror may have altered it)`,
    );
  }
  renameSync(partial, dest);
  rmSync(meta, { force: true });
  return have > 0 ? 'resumed' : 'downloaded';
}

/**
 * Streams the file from byte `have` (all of it from 0) onto `partial`, each chunk through
 * `onChunk`. Returns undefined when the stream ended, 'range-ignored' when a range request got
 * the whole file, or the error that cut it short (the bytes written so far stay).
 */
async function fetchRest(blob: Blob, have: number, partial: string, o: { onChunk(chunk: Buffer): void; rangeHonoured(): boolean }): Promise<undefined | 'range-ignored' | Error> {
  const out = createWriteStream(partial, { flags: have > 0 ? 'a' : 'w' });
  try {
    const web = have > 0 ? blob.slice(have).stream() : blob.stream();
    const body = Readable.fromWeb(web as import('node:stream/web').ReadableStream<Uint8Array>);
    await pipeline(
      body,
      async function* (source: AsyncIterable<Buffer>) {
        let first = true;
        for await (const chunk of source) {
          // The client asked for a range; a server that ignores it sends the whole file (HTTP 200).
          if (first && have > 0 && !o.rangeHonoured()) throw new RangeIgnoredError();
          first = false;
          o.onChunk(chunk);
          yield chunk;
        }
      },
      out,
    );
    return undefined;
  } catch (e) {
    if (e instanceof RangeIgnoredError) return 'range-ignored';
    // The client's web stream aborts with the failure's message (a string), not an Error.
    return e instanceof Error ? e : new Error(String(e));
  } finally {
    // A failed pipeline can settle while the file still has a write in flight: the bytes on disk
    // are what the next run resumes from, so they are final before this returns.
    if (!out.closed) await new Promise<void>((closed) => out.once('close', () => closed()));
  }
}

class RangeIgnoredError extends Error {
  constructor() {
    super('the server sent the whole file instead of the range asked for');
  }
}
