/**
 * Opens a Hugging Face checkpoint directory for the reference forward: config.json parsed by the
 * reference's own reader, tensors read with the safetensors reader (the only shared module, a
 * plain file-format parser) and widened to float64.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CheckpointTensors } from '../safetensors/checkpoint';
import { parseRefConfig, type RefConfig } from './config';
import { cachedLookup, resolveLayout, type ReferenceWeights } from './weights';

export interface ReferenceModel {
  config: RefConfig;
  weights: ReferenceWeights;
  close(): void;
}

export function openReferenceModel(checkpointDir: string): ReferenceModel {
  const config = parseRefConfig(JSON.parse(fs.readFileSync(path.join(checkpointDir, 'config.json'), 'utf8')));
  const tensors = CheckpointTensors.open(checkpointDir);
  const lookup = cachedLookup({
    has: (n) => tensors.has(n),
    get: (n) => ({ shape: tensors.info(n).shape, data: Float64Array.from(tensors.readFloat32(n)) }),
  });
  return { config, weights: resolveLayout(lookup, config.text.tieWordEmbeddings), close: () => tensors.close() };
}
