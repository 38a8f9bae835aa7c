/**
 * `longsight model pull`: a LLaVA-OneVision checkpoint from the Hugging Face Hub to a converted
 * package, as its steps — resolve the revision to a commit, list the checkpoint's files, check the
 * disk, download each (resumable, verified: download.ts), convert (the converter, bounded memory),
 * record. The package records what it was made from (longsight-pull.json), so pulling the same
 * commit for the same target again does nothing.
 *
 *   checkpoint:  <home>/hub/<org>--<name>/<commit>/   (kept for other targets unless removed)
 *   package:     --out, or <home>/models/<org>--<name>-<target>/
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { convertCheckpoint, type ConvertProgress } from '../convert/convert';
import { packageDtypeFor, type ConvertTarget } from '../convert/cli';
import { loadModelPackage, MANIFEST_FILE, type ModelPackageManifest } from '../model/package-manifest';
import { homePath } from '../local/home';
import { recordPulledModel } from '../local/model';
import { downloadVerified } from './download';
import { checkpointFiles, checkRepoName, hubAccess, listRepoFiles, PullError, resolveCommit, type HubAccess, type RepoFile } from './hub-files';

export const PULL_RECORD = 'longsight-pull.json';

export interface PullRecord {
  repo: string;
  revision: string;
  commit: string;
  target: ConvertTarget;
  dtype: string;
  hub: string;
  files: { path: string; size: number; sha256?: string; gitOid?: string }[];
  pulledAt: string;
}

export interface PullOptions {
  repo: string;
  revision?: string;
  out?: string;
  target?: ConvertTarget;
  removeCheckpoint?: boolean;
  env?: NodeJS.ProcessEnv;
  /** The Hub to use (default from HF_ENDPOINT / HF_TOKEN). */
  access?: HubAccess;
  onEvent?: (e: PullEvent) => void;
}

export type PullEvent =
  | { kind: 'resolved'; commit: string; files: number; totalBytes: number; presentBytes: number; checkpointDir: string }
  | { kind: 'download'; file: string; fileDone: number; fileTotal: number; done: number; total: number }
  | { kind: 'file'; file: string; how: 'downloaded' | 'resumed' | 'present' }
  | { kind: 'convert'; progress: ConvertProgress };

export interface PullResult {
  packageDir: string;
  checkpointDir: string;
  commit: string;
  /** Nothing to do: the package was already made from this commit for this target. */
  upToDate: boolean;
  manifest: ModelPackageManifest;
  /** Bytes fetched over the network in this pull. */
  fetchedBytes: number;
  checkpointBytes: number;
}

const GB = 1e9;

function readRecord(dir: string): PullRecord | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, PULL_RECORD), 'utf8')) as PullRecord;
  } catch {
    return undefined;
  }
}

function upToDate(dir: string, repo: string, commit: string, target: ConvertTarget): ModelPackageManifest | undefined {
  const rec = readRecord(dir);
  if (!rec || rec.repo !== repo || rec.commit !== commit || rec.target !== target || !existsSync(join(dir, MANIFEST_FILE))) return undefined;
  try {
    return loadModelPackage(dir).manifest;
  } catch {
    return undefined;
  }
}

/** Bytes free where `path` (or its nearest existing parent) lives, and which device that is. */
function freeSpace(path: string): { bytes: number; dev: number } {
  let p = resolve(path);
  while (!existsSync(p)) p = dirname(p);
  const s = statfsSync(p);
  return { bytes: s.bavail * s.bsize, dev: statSync(p).dev };
}

/**
 * Refuses before downloading when the disk cannot hold what is left to download plus the package
 * (fp32 from a 16-bit checkpoint is twice its size; fp16 about the same).
 */
function checkDisk(checkpointDir: string, out: string, toDownload: number, weightBytes: number, target: ConvertTarget): void {
  const packageBytes = weightBytes * (target === 'cpu' ? 2 : 1);
  const a = freeSpace(checkpointDir);
  const b = freeSpace(out);
  const needs = a.dev === b.dev ? [{ where: checkpointDir, need: toDownload + packageBytes, free: a.bytes }] : [{ where: checkpointDir, need: toDownload, free: a.bytes }, { where: out, need: packageBytes, free: b.bytes }];
  for (const n of needs) {
    if (n.need > n.free) {
      throw new PullError(`not enough disk space: about ${(n.need / GB).toFixed(1)} GB needed under ${n.where} (download ${(toDownload / GB).toFixed(1)} GB + ${target} package ~${(packageBytes / GB).toFixed(1)} GB), ${(n.free / GB).toFixed(1)} GB free`);
    }
  }
}

/** Converts into a sibling temporary folder, then swaps it into place (an earlier package there is replaced only once the new one is whole). */
async function convertInto(checkpointDir: string, out: string, target: ConvertTarget, record: Omit<PullRecord, 'dtype' | 'pulledAt'>, onEvent: (e: PullEvent) => void): Promise<ModelPackageManifest> {
  const dtype = packageDtypeFor(target);
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.pulling-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    const manifest = await convertCheckpoint(checkpointDir, tmp, { dtype, onProgress: (progress) => onEvent({ kind: 'convert', progress }) });
    writeFileSync(join(tmp, PULL_RECORD), JSON.stringify({ ...record, dtype, pulledAt: new Date().toISOString() } satisfies PullRecord, null, 2));
    const old = `${out}.replaced-${process.pid}`;
    if (existsSync(out)) renameSync(out, old);
    renameSync(tmp, out);
    rmSync(old, { recursive: true, force: true });
    return manifest;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

export async function pullModel(o: PullOptions): Promise<PullResult> {
  const env = o.env ?? process.env;
  checkRepoName(o.repo);
  const target = o.target ?? 'cpu';
  const revision = o.revision ?? 'main';
  const access = o.access ?? hubAccess(env);
  const [org, name] = o.repo.split('/');
  const out = resolve(o.out ?? join(homePath('models', env), `${org}--${name}-${target}`));
  const onEvent = o.onEvent ?? (() => undefined);
  const finish = (r: Omit<PullResult, 'packageDir'>): PullResult => {
    // The default of `longsight run` (CPU workers): a CPU package; a CUDA one is for the GPU workers.
    if (target === 'cpu') recordPulledModel({ dir: out, repo: o.repo, revision, commit: r.commit, target, pulledAt: new Date().toISOString() }, env);
    return { packageDir: out, ...r };
  };

  // A commit id already pulled needs no network at all; a branch or tag is resolved first.
  const pinned = /^[0-9a-f]{40}$/.test(revision) ? revision : undefined;
  const early = pinned ? upToDate(out, o.repo, pinned, target) : undefined;
  const commit = pinned ?? (await resolveCommit(o.repo, revision, access));
  const checkpointDir = join(homePath('hub', env), `${org}--${name}`, commit);
  const existing = early ?? upToDate(out, o.repo, commit, target);
  if (existing) return finish({ checkpointDir, commit, upToDate: true, manifest: existing, fetchedBytes: 0, checkpointBytes: 0 });
  if (existsSync(out) && readdirSync(out).length > 0 && !readRecord(out)) {
    throw new PullError(`${out} exists and was not made by \`longsight model pull\`: choose another --out (nothing there was changed)`);
  }

  const files = checkpointFiles(o.repo, commit, await listRepoFiles(o.repo, commit, access));
  const total = files.reduce((n, f) => n + f.size, 0);
  const present = files.filter((f) => existsSync(join(checkpointDir, f.path)) && statSync(join(checkpointDir, f.path)).size === f.size).reduce((n, f) => n + f.size, 0);
  checkDisk(checkpointDir, out, total - present, files.filter((f) => f.path.endsWith('.safetensors')).reduce((n, f) => n + f.size, 0), target);
  onEvent({ kind: 'resolved', commit, files: files.length, totalBytes: total, presentBytes: present, checkpointDir });

  const fetchedBytes = await downloadAll(o.repo, commit, files, checkpointDir, access, total, onEvent);
  const manifest = await convertInto(checkpointDir, out, target, { repo: o.repo, revision, commit, target, hub: access.hubUrl, files }, onEvent);
  if (o.removeCheckpoint) rmSync(checkpointDir, { recursive: true, force: true });
  return finish({ checkpointDir, commit, upToDate: false, manifest, fetchedBytes, checkpointBytes: total });
}

/** Each file in turn (largest last, so configs fail fast); returns the bytes fetched. */
async function downloadAll(repo: string, commit: string, files: RepoFile[], dir: string, access: HubAccess, total: number, onEvent: (e: PullEvent) => void): Promise<number> {
  let before = 0;
  let fetched = 0;
  for (const f of [...files].sort((a, b) => a.size - b.size)) {
    let start: number | undefined;
    let fileDone = 0;
    const how = await downloadVerified(repo, commit, f, join(dir, f.path), access, (p) => {
      start ??= p.done;
      fileDone = p.done;
      onEvent({ kind: 'download', file: f.path, fileDone: p.done, fileTotal: p.total, done: before + p.done, total });
    });
    if (how !== 'present') fetched += fileDone - (start ?? 0);
    before += f.size;
    onEvent({ kind: 'file', file: f.path, how });
  }
  return fetched;
}
