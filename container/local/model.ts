/**
 * Which model the local pipeline runs: `--model DIR` or LONGSIGHT_MODEL_DIR (a package from
 * `longsight model pull` or `convert`), else (in the CLI) the last `longsight model pull`,
 * otherwise the tiny random test checkpoint, generated and converted on first use and cached under
 * .cache/ (its answers are meaningless: it proves the pipeline, not the model).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadModelPackage, MANIFEST_FILE, type ModelPackageManifest } from '../model/package-manifest';
import { homePath } from './home';

export interface ResolvedModel {
  dir: string;
  manifest: ModelPackageManifest;
  /** True for the tiny random checkpoint. */
  isTestModel: boolean;
}

export const TEST_MODEL_NOTICE =
  'Model: the tiny random test checkpoint (no model configured): its answers are meaningless. For real answers: `longsight model pull llava-hf/llava-onevision-qwen2-0.5b-ov-hf` (then `run` uses it), or --model DIR.';

export async function resolveDefaultModel(opts: { model?: string; env?: NodeJS.ProcessEnv } = {}): Promise<ResolvedModel> {
  const env = opts.env ?? process.env;
  const explicit = opts.model ?? env.LONGSIGHT_MODEL_DIR;
  if (explicit) {
    const dir = resolve(explicit);
    if (!existsSync(dir)) throw new Error(`model directory not found: ${dir}`);
    return { dir, manifest: loadModelPackage(dir).manifest, isTestModel: false };
  }
  // Loaded lazily: the generator and converter are only needed when no model is configured.
  const { ensureTinyModelPackage } = await import('../convert/tiny-model-package');
  const dir = await ensureTinyModelPackage();
  return { dir, manifest: loadModelPackage(dir).manifest, isTestModel: true };
}

/** What `longsight model pull` records about the last CPU package it made (<home>/models/default-model.json): `longsight run`'s default. */
export interface PulledModelRecord {
  dir: string;
  repo: string;
  revision: string;
  commit: string;
  target: 'cpu' | 'cuda';
  pulledAt: string;
}

export const DEFAULT_MODEL_FILE = 'default-model.json';

export function recordPulledModel(rec: PulledModelRecord, env: NodeJS.ProcessEnv = process.env): void {
  const dir = homePath('models', env);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, DEFAULT_MODEL_FILE), JSON.stringify(rec, null, 2));
}

/** The package of the last `longsight model pull`, if it is still there. */
export function lastPulledModel(env: NodeJS.ProcessEnv = process.env): string | undefined {
  try {
    const rec = JSON.parse(readFileSync(join(homePath('models', env), DEFAULT_MODEL_FILE), 'utf8')) as PulledModelRecord;
    return rec.dir && existsSync(join(rec.dir, MANIFEST_FILE)) ? rec.dir : undefined;
  } catch {
    return undefined;
  }
}
