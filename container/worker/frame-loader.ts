/**
 * Loads a job's frames from S3: the manifest the extraction Lambda wrote (validated with the
 * contract), then every frame, in manifest order, a bounded number at a time.
 */
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { FrameManifestSchema, parseOrThrow, type FrameManifest, type JobMessage } from '../../lib/contracts';
import { PermanentJobError } from './errors';

export interface LoadedFrames {
  manifest: FrameManifest;
  frames: Buffer[];
}

async function getBytes(s3: S3Client, bucket: string, key: string, signal?: AbortSignal): Promise<Buffer> {
  try {
    const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
    return Buffer.from(await r.Body!.transformToByteArray());
  } catch (e) {
    // A frame or manifest that is not there will not appear on a retry: the extraction's output is gone.
    const name = (e as { name?: string }).name;
    if (name === 'NoSuchKey' || name === 'NotFound' || name === 'NoSuchBucket') {
      throw new PermanentJobError(`frames missing in S3: s3://${bucket}/${key} (${name}); extract the video again`, { cause: e });
    }
    throw e;
  }
}

/** Runs fn over items with at most `limit` in flight, keeping the input order in the result. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const run = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run));
  return out;
}

/**
 * One abort signal per request, all aborted by a single listener on the job's signal. The SDK adds
 * an 'abort' listener to the signal of every request it sends; handing the job's own signal to
 * `concurrency` parallel GETs put that many listeners on it at once (Node's MaxListenersExceeded
 * warning at 11). Here the job's signal carries one listener however many requests are in flight.
 */
export interface RequestSignals {
  /** Runs `fn` with a signal of its own, aborted when the job's signal is. */
  run<T>(fn: (signal?: AbortSignal) => Promise<T>): Promise<T>;
  close(): void;
}

export function requestSignals(signal?: AbortSignal): RequestSignals {
  if (!signal) return { run: (fn) => fn(undefined), close: () => undefined };
  const live = new Set<AbortController>();
  const onAbort = () => {
    for (const c of live) c.abort(signal.reason);
  };
  signal.addEventListener('abort', onAbort, { once: true });
  return {
    async run(fn) {
      const c = new AbortController();
      if (signal.aborted) c.abort(signal.reason);
      live.add(c);
      try {
        return await fn(c.signal);
      } finally {
        live.delete(c);
      }
    },
    close() {
      signal.removeEventListener('abort', onAbort);
      live.clear();
    },
  };
}

/** The manifest, then every frame in manifest order, `concurrency` at a time; `onLoaded` after each frame. */
export async function loadFrames(s3: S3Client, msg: JobMessage, concurrency: number, signal?: AbortSignal, onLoaded?: (done: number, total: number) => void): Promise<LoadedFrames> {
  const signals = requestSignals(signal);
  const get = (key: string) => signals.run((s) => getBytes(s3, msg.frames.bucket, key, s));
  try {
    const raw = await get(msg.frames.manifestKey);
    let json: unknown;
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch (e) {
      throw new PermanentJobError(`frame manifest s3://${msg.frames.bucket}/${msg.frames.manifestKey} is not JSON: ${(e as Error).message}`);
    }
    const manifest = parseOrThrow(FrameManifestSchema, json, 'frame manifest');
    // An 'ask' job re-reads the frames another job extracted; otherwise the manifest must be this job's.
    if (msg.kind !== 'ask' && manifest.jobId !== msg.jobId) {
      throw new PermanentJobError(`frame manifest belongs to job ${manifest.jobId}, not ${msg.jobId}`);
    }
    const ordered = [...manifest.frames].sort((a, b) => a.index - b.index);
    let loaded = 0;
    const frames = await mapLimit(ordered, concurrency, async (f) => {
      const bytes = await get(f.key);
      onLoaded?.(++loaded, ordered.length);
      return bytes;
    });
    return { manifest, frames };
  } finally {
    signals.close();
  }
}

/** Picks `n` of `count` frames spread uniformly (the fallback's "fewer frames"), keeping order. */
export function uniformSubset(count: number, n: number): number[] {
  if (n >= count) return Array.from({ length: count }, (_, i) => i);
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(Math.min(count - 1, Math.floor(((i + 0.5) * count) / n)));
  return out;
}
