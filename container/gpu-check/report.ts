/** The one screen `npm run gpu:check` prints. */
import type { TransferBytes } from '../runtime/transfer-ledger';
import type { LogitsComparison } from './compare';
import type { GpuInfo } from './nvidia-smi';

export interface GpuCheckResult {
  gpu: GpuInfo;
  plannedGpu?: string;
  convertSeconds: { fp16: number; fp32: number };
  logits: LogitsComparison;
  tokens: { cuda: number[]; cpu: number[]; common: number };
  measured: { visionFramesPerS: number; prefillTokensPerS: number; decodeTokensPerS: number; peakGpuMemMiB: number };
  planned?: { visionFramesPerS: number; prefillTokensPerS: number; decodeTokensPerS: number; peakGpuMemMiB: number };
  ledger: TransferBytes;
  frames: number;
  tokensGenerated: number;
  totalSeconds: number;
}

const n = (v: number, digits = 1) => (Number.isFinite(v) ? v.toFixed(digits) : '-');

export function formatGpuCheck(r: GpuCheckResult): string {
  const p = r.planned;
  const row = (label: string, measured: number, planned: number | undefined, unit: string) =>
    `  ${label.padEnd(22)} ${n(measured).padStart(10)} ${unit.padEnd(10)} ${planned !== undefined ? `planned ${n(planned)} (measured/planned ${n(measured / planned, 2)})` : 'planned: no figures for this GPU'}`;
  const lines = [
    `GPU check on ${r.gpu.name} (${(r.gpu.memoryTotalMiB / 1024).toFixed(0)} GiB, driver ${r.gpu.driver})${r.plannedGpu ? `, planner figures: ${r.plannedGpu}` : ''}`,
    `  0.5B-shaped random checkpoint converted to fp16 in ${n(r.convertSeconds.fp16)} s and fp32 in ${n(r.convertSeconds.fp32)} s`,
    '',
    'CUDA fp16 vs CPU fp32 (same job, last-position logits after the prefill):',
    `  max |Δ| ${r.logits.maxAbs.toExponential(2)}, max relative ${r.logits.maxRel.toExponential(2)} (the fp16 tolerance of the CPU tests is 1e-2); same next token: ${r.logits.sameArgmax ? 'yes' : 'NO'}`,
    `  greedy tokens: ${r.tokens.common} of ${r.tokens.cuda.length} equal from the start`,
    '',
    `Speed on CUDA (${r.frames} frames, ${r.tokensGenerated} generated tokens in the graph's loop):`,
    row('vision', r.measured.visionFramesPerS, p?.visionFramesPerS, 'frames/s'),
    row('prefill', r.measured.prefillTokensPerS, p?.prefillTokensPerS, 'tokens/s'),
    row('decode', r.measured.decodeTokensPerS, p?.decodeTokensPerS, 'tokens/s'),
    row('peak GPU memory', r.measured.peakGpuMemMiB, p?.peakGpuMemMiB, 'MiB'),
    '',
    `Transfer ledger of the job: ${(r.ledger.total / 1e6).toFixed(1)} MB in all, ${r.ledger.perGeneratedToken} B per generated token, KV in ${(r.ledger.byKind.kvIn / 1e6).toFixed(1)} MB / out ${(r.ledger.byKind.kvOut / 1e6).toFixed(1)} MB`,
    `done in ${n(r.totalSeconds)} s`,
  ];
  return lines.join('\n');
}
