/**
 * Test fixtures for the runtime: tiny random checkpoints in the Hugging Face layout, converted by
 * our converter, through the converter's cached builder (keyed by the options and a hash of the
 * generator/converter sources, built in a temporary directory and renamed into place, shared with
 * the other suites so CI converts each variant once).
 */
import { ensureTinyModel, type TinyModelOptions } from '../../container/convert/tiny-model-package';

export interface TinyFixture {
  checkpointDir: string;
  packageDir: string;
}

export function tinyPackage(opts: Omit<TinyModelOptions, 'cacheDir'> = {}): Promise<TinyFixture> {
  return ensureTinyModel(opts);
}

/** Deterministic-per-run but fresh-each-run random numbers (seed printed on failure by the caller): the runtime's mulberry32. */
export { seededRandom as randomSource } from '../../container/runtime/sampler';

/** max |a − b| / max |b|: error relative to the reference tensor's scale (elementwise ratios blow up near zero). */
export function maxRelativeError(actual: ArrayLike<number>, reference: ArrayLike<number>): number {
  if (actual.length !== reference.length) throw new Error(`length ${actual.length} != ${reference.length}`);
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < reference.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(actual[i] - reference[i]));
    maxRef = Math.max(maxRef, Math.abs(reference[i]));
  }
  return maxDiff / (maxRef || 1);
}
