/**
 * Which model the local pipeline runs: `--model DIR` or LONGSIGHT_MODEL_DIR (a package from
 * `longsight convert`), otherwise the tiny random test checkpoint, generated and converted on
 * first use and cached under .cache/ (its answers are meaningless: it proves the pipeline, not
 * the model).
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadModelPackage, type ModelPackageManifest } from '../model/package-manifest';

export interface ResolvedModel {
  dir: string;
  manifest: ModelPackageManifest;
  /** True for the tiny random checkpoint. */
  isTestModel: boolean;
}

export const TEST_MODEL_NOTICE =
  'Model: the tiny random test checkpoint (no model configured): its answers are meaningless. Pass --model DIR (a `longsight convert` output) for real answers.';

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
