/**
 * The job's rotary tables: one RoPE for the whole sequence (system, video, question, generated
 * tokens), from the method's frequency function with the job's extension settings and its
 * visual token count after pooling (the paper's s = L_test / L_v). The decoder graph takes them
 * as cos_cache/sin_cache, so nothing is re-exported per job.
 */
import type { RopeExtension, RopeMode } from '../../lib/contracts';
import { buildRopeTables, computeRopeFrequencies } from '../model/yarn-rope';
import type { DecoderRunner, RotaryTensors } from './decoder';

export interface JobRotary {
  tensors: RotaryTensors;
  /** s applied (1 when the stock table is used). */
  scale: number;
  mode: RopeMode;
  applied: boolean;
  attentionFactor: number;
}

export function jobRotary(
  decoder: DecoderRunner,
  opts: { headDim: number; ropeTheta: number; languageWindow: number; rope: RopeExtension; visualTokens: number; positions: number },
): JobRotary {
  const freqs = computeRopeFrequencies({
    headDim: opts.headDim,
    ropeTheta: opts.ropeTheta,
    rope: opts.rope,
    visualTokens: opts.visualTokens,
    languageWindow: opts.languageWindow,
    sequenceTokens: opts.positions,
  });
  const tables = buildRopeTables(freqs, opts.positions, decoder.ropeType);
  return {
    tensors: decoder.rotaryTensors(tables.cos, tables.sin, opts.positions),
    scale: freqs.scale,
    mode: freqs.mode,
    applied: freqs.applied,
    attentionFactor: freqs.attentionFactor,
  };
}
