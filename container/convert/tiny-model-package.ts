/**
 * "The default model" when no real one is configured: a tiny random LLaVA-OneVision checkpoint in
 * the Hugging Face layout, converted by our converter. Cached by a hash of the options and of the
 * generator/converter sources (a code change rebuilds it); built in a temporary directory and
 * renamed into place, so concurrent callers (parallel Jest workers, local pipeline) never see
 * half a package.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateTinyCheckpoint, type TinyCheckpointOptions } from '../testing/tiny-checkpoint';
import { convertCheckpoint, type PackageDtype } from './convert';

const REPO_ROOT = path.resolve(__dirname, '../..');
const SOURCE_DIRS = ['container/convert', 'container/onnx', 'container/testing', 'container/safetensors', 'container/model'];
/** Single files the generated checkpoint depends on (the chat template constant lives with the prompt code). */
const SOURCE_FILES = ['container/runtime/prompt.ts'];

export interface TinyModelOptions extends TinyCheckpointOptions {
  packageDtype?: PackageDtype;
  /** Where cached models live (default: <repo>/.cache/tiny-models). */
  cacheDir?: string;
}

export interface TinyModel {
  checkpointDir: string;
  packageDir: string;
}

function sourceHash(): string {
  const h = createHash('sha256');
  for (const dir of SOURCE_DIRS) {
    const abs = path.join(REPO_ROOT, dir);
    if (!fs.existsSync(abs)) continue;
    for (const f of fs.readdirSync(abs).sort()) {
      if (!/\.(ts|js|proto)$/.test(f)) continue;
      h.update(`${dir}/${f}\0`);
      h.update(fs.readFileSync(path.join(abs, f)));
    }
  }
  for (const f of SOURCE_FILES) {
    const abs = path.join(REPO_ROOT, f);
    if (!fs.existsSync(abs)) continue;
    h.update(`${f}\0`);
    h.update(fs.readFileSync(abs));
  }
  return h.digest('hex');
}

export async function ensureTinyModel(opts: TinyModelOptions = {}): Promise<TinyModel> {
  const { cacheDir, packageDtype, ...ckpt } = opts;
  const root = cacheDir ?? path.join(REPO_ROOT, '.cache', 'tiny-models');
  const key = createHash('sha256').update(JSON.stringify({ ckpt, packageDtype: packageDtype ?? 'fp32' })).update(sourceHash()).digest('hex').slice(0, 16);
  const dir = path.join(root, key);
  if (!fs.existsSync(path.join(dir, 'READY'))) {
    fs.mkdirSync(root, { recursive: true });
    const tmp = fs.mkdtempSync(`${dir}.tmp-`);
    try {
      generateTinyCheckpoint(path.join(tmp, 'checkpoint'), ckpt);
      await convertCheckpoint(path.join(tmp, 'checkpoint'), path.join(tmp, 'package'), { dtype: packageDtype ?? 'fp32' });
      fs.writeFileSync(path.join(tmp, 'READY'), new Date().toISOString());
      try {
        fs.renameSync(tmp, dir);
      } catch {
        // Another process finished first (its copy is identical), or a crashed build left debris.
        if (!fs.existsSync(path.join(dir, 'READY'))) {
          fs.rmSync(dir, { recursive: true, force: true });
          fs.renameSync(tmp, dir);
        }
      }
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
  return { checkpointDir: path.join(dir, 'checkpoint'), packageDir: path.join(dir, 'package') };
}

/** The converted package directory of the tiny default model (generated + converted on first use). */
export async function ensureTinyModelPackage(opts: TinyModelOptions = {}): Promise<string> {
  return (await ensureTinyModel(opts)).packageDir;
}
