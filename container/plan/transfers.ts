/**
 * The transfer ledger of a job, planned from shapes: the runs the engine makes
 * (container/runtime/onnx-engine.ts) replayed through the engine's own accounting class
 * (container/runtime/transfer-ledger.ts), with each tensor's byte size computed instead of measured.
 * Tests check it equal to what the engine records on real runs; `longsight plan` shows it for any
 * shape (7B at 256 frames included), where it is the PCIe traffic a CUDA worker would cause.
 *
 * The runs, in order:
 *   vision — per pooled side (s_h frames, then s_l frames), batches of `visionBatch` frames:
 *            in pixel_values [n,3,S,S] f32 + pool_weights [side,G] f32, out image_tokens [n,side²,H] f32;
 *   prefix — several questions (or the host loop): the shared prefix prefilled once, its KV out;
 *   per question, graph loop: the question's embeddings + the prefix KV in, token ids + log-probs out
 *            (one question alone: its whole prompt in one run, no KV either way);
 *   per question, host loop: prefill (logits + KV out), then one run per further token (one row in,
 *            the whole KV in and out, logits out).
 * Every decoder run feeds the job's rotary tables and five small control inputs.
 */
import type { PoolingSchedule } from '../../lib/contracts';
import { framesBySide } from '../model/progressive-pool';
import { TransferLedger, type TransferBytes } from '../runtime/transfer-ledger';

export interface TransferPlanInput {
  text: { hiddenSize: number; numLayers: number; numKvHeads: number; headDim: number; vocabSize: number };
  vision: { imageSize: number; gridSize: number };
  dtype: 'fp32' | 'fp16';
  frames: number;
  pooling: PoolingSchedule;
  visionBatch: number;
  /** Tokens of the prompt part all questions share, visual tokens included (chat header + video). */
  prefixTokens: number;
  /** Each question's tokens after the shared prefix (question text + the assistant header). */
  questionTokens: number[];
  /** Rows of the job's rotary tables (longest prompt + max_new_tokens). */
  ropePositions: number;
  /** Tokens each answer generated (≤ max_new_tokens). */
  generatedTokens: number[];
  /** Whether each answer ended on a stop id (the host loop then made one more step). */
  stopped?: boolean[];
  stopIds: number;
  decodeLoop: 'graph' | 'host';
}

const F32 = 4;
const I64 = 8;

/** The decoder's five control inputs: max_new_tokens, prefill_chunk, stop_ids (int64), temperature (f32), seed. */
function controlBytes(stopIds: number): number {
  return I64 + I64 + I64 * stopIds + F32 + I64;
}

export function planTransfers(p: TransferPlanInput): TransferBytes {
  const ledger = new TransferLedger();
  const b = p.dtype === 'fp16' ? 2 : 4;
  const { hiddenSize: H, numLayers: L, numKvHeads: kvh, headDim: D, vocabSize: V } = p.text;
  const kvPerToken = L * kvh * D * b; // one of key/value, all layers
  const kv = (name: 'past' | 'present', tokens: number) => {
    ledger.add(`${name}_key_0`, kvPerToken * tokens, scope);
    ledger.add(`${name}_value_0`, kvPerToken * tokens, scope);
  };
  let scope: 'job' | 'question' | 'token' = 'job';
  const decoderRun = (rows: number) => {
    ledger.add('inputs_embeds', rows * H * b, scope);
    ledger.add('cos_cache', p.ropePositions * (D / 2) * b, scope);
    ledger.add('sin_cache', p.ropePositions * (D / 2) * b, scope);
    ledger.add('stop_ids', controlBytes(p.stopIds), scope);
  };

  // Vision: frames grouped by pooled side, in batches.
  const S = p.vision.imageSize;
  for (const g of framesBySide(p.frames, p.vision.gridSize, p.pooling)) {
    for (let start = 0; start < g.frames.length; start += p.visionBatch) {
      const n = Math.min(p.visionBatch, g.frames.length - start);
      ledger.add('pixel_values', n * 3 * S * S * F32, 'job');
      ledger.add('pool_weights', g.side * p.vision.gridSize * F32, 'job');
      ledger.add('image_tokens', n * g.side * g.side * H * F32, 'job');
    }
  }

  const q = p.questionTokens.length;
  const shared = q > 1 || p.decodeLoop === 'host';
  if (shared) {
    scope = 'job';
    decoderRun(p.prefixTokens);
    kv('present', p.prefixTokens);
  }
  p.questionTokens.forEach((rest, i) => {
    const generated = p.generatedTokens[i];
    const rows = shared ? rest : p.prefixTokens + rest;
    const past = shared ? p.prefixTokens : 0;
    scope = 'question';
    decoderRun(rows);
    kv('past', past);
    if (p.decodeLoop === 'graph') {
      ledger.add('tokens', generated * I64, scope);
      ledger.add('token_logprobs', generated * F32, scope);
    } else {
      ledger.add('logits', V * F32, scope);
      kv('present', past + rows);
      // One step per generated token fed back: all but the last, unless the answer ended on a stop id.
      const steps = p.stopped?.[i] ? generated : Math.max(0, generated - 1);
      scope = 'token';
      for (let k = 0; k < steps; k++) {
        const before = past + rows + k;
        decoderRun(1);
        kv('past', before);
        ledger.add('logits', V * F32, scope);
        kv('present', before + 1);
      }
    }
    ledger.addGeneratedTokens(generated);
  });
  return ledger.summary();
}
