/** Renders a JobPlan as the readable tables `longsight plan` prints. */
import type { PoolingSchedule } from '../../lib/contracts';
import type { TransferBytes } from '../runtime/transfer-ledger';
import type { JobPlan } from './job-plan';
import type { ScenarioPlan } from './memory';
import { GPU_USABLE_FRACTION } from './memory';
import { DECODE_LAUNCH_SECONDS_PER_LAYER, EFFICIENCY } from './time';

export function formatGiB(bytes: number): string {
  const gib = bytes / 2 ** 30;
  return gib >= 100 ? `${gib.toFixed(0)} GiB` : gib >= 10 ? `${gib.toFixed(1)} GiB` : `${gib.toFixed(2)} GiB`;
}

function pooling(p: PoolingSchedule): string {
  return p.groupSize === 1 && p.strideHigh === p.strideLow ? `stride ${p.strideHigh} (K=1)` : `K=${p.groupSize}, (${p.strideHigh},${p.strideLow})`;
}

function table(rows: [string, string, string][]): string {
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  const w2 = Math.max(...rows.map((r) => r[2].length));
  return rows
    .map((r, i) => {
      const line = `${r[0].padEnd(w0)}  ${r[1].padStart(w1)}  ${r[2].padStart(w2)}`;
      return i === 0 ? `${line}\n${'-'.repeat(w0 + w1 + w2 + 4)}` : line;
    })
    .join('\n');
}

/** Bytes in decimal units (what PCIe bandwidth is quoted in). */
export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${Math.round(n)} B`;
}

function ledgerLines(t: TransferBytes, host: TransferBytes): string[] {
  const k = t.byKind;
  return [
    `  total ${formatBytes(t.total)}: pixels ${formatBytes(k.pixels)}, vision out (pooled tokens) ${formatBytes(k.visionOut)}, embeddings ${formatBytes(k.embeddings)}, ` +
      `KV in ${formatBytes(k.kvIn)} / out ${formatBytes(k.kvOut)}, rotary tables ${formatBytes(k.rotary)}, token ids + log-probs ${formatBytes(k.tokenIds + k.logprobs)}, logits ${formatBytes(k.logits)}`,
    `  per generated token: ${formatBytes(t.perGeneratedToken)} (the host loop would move ${formatBytes(host.perGeneratedToken)} a token, ${formatBytes(host.total)} for the job)`,
  ];
}

function seconds(s: number): string {
  return s >= 100 ? `${s.toFixed(0)} s` : s >= 1 ? `${s.toFixed(1)} s` : `${(s * 1000).toFixed(0)} ms`;
}

function costTable(plan: JobPlan): string {
  const chosen = plan.costs.chosen.instances;
  const stock = new Map(plan.costs.stock.instances.map((i) => [i.instanceType, i]));
  const rows: string[][] = [['instance (GPU)', 'stock total', 'vision', 'prefill', 'decode/token', 'decode', 'transfers', 'total', '$/video', '$/video-hour']];
  for (const i of chosen) {
    const st = stock.get(i.instanceType);
    rows.push([
      `${i.instanceType} (${i.gpu})`,
      st ? seconds(st.times.totalS) : '-',
      seconds(i.times.visionS),
      seconds(i.times.prefillS),
      `${i.times.decodeMsPerToken.toFixed(1)} ms`,
      seconds(i.times.decodeS),
      seconds(i.times.transferS),
      seconds(i.times.totalS),
      `$${i.usdPerVideo.toFixed(4)}`,
      `$${i.usdPerVideoHour.toFixed(4)}`,
    ]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows
    .map((r, n) => {
      const line = r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ');
      return n === 0 ? `${line}\n${'-'.repeat(line.length)}` : line;
    })
    .join('\n');
}

export function formatPlan(plan: JobPlan): string {
  const s = plan.stock;
  const c = plan.chosen;
  const both = (f: (x: ScenarioPlan) => string): [string, string] => [f(s), f(c)];
  const gib = (f: (x: ScenarioPlan) => number) => both((x) => formatGiB(f(x)));
  const gpu = plan.target === 'gpu';
  const rows: [string, string, string][] = [
    ['', 'stock', 'chosen'],
    ['pooling', ...both((x) => pooling(x.pooling))],
    ['RoPE', ...both((x) => x.ropeMode)],
    ['visual tokens (incl. image_newline)', ...both((x) => x.visualTokens.toLocaleString('en-US'))],
    ['prompt tokens', ...both((x) => x.promptTokens.toLocaleString('en-US'))],
    ['sequence (prompt + max new tokens)', ...both((x) => x.sequenceTokens.toLocaleString('en-US'))],
    ['RoPE scale s', ...both((x) => (x.ropeScale === 1 ? '1 (stock)' : x.ropeScale.toFixed(3)))],
    ['weights: vision', ...gib((x) => x.budget.weights.vision)],
    ['weights: decoder (layers, lm_head, loop embeddings)', ...gib((x) => x.budget.weights.decoder)],
    ['weights: token embeddings (on disk)', ...gib((x) => x.budget.weights.embeddings)],
    ['KV cache (full sequence)', ...gib((x) => x.budget.kvCache)],
    [`prefill: KV past + present`, ...gib((x) => x.budget.prefill.kvPast + x.budget.prefill.kvPresent)],
    [`prefill: attention scores`, ...gib((x) => x.budget.prefill.attentionScores)],
    [`prefill: MLP + hidden + inputs + logits`, ...gib((x) => x.budget.prefill.mlp + x.budget.prefill.hidden + x.budget.prefill.inputs + x.budget.prefill.logits)],
  ];
  rows.push(['prefill: arena slack (freed smaller caches)', ...gib((x) => x.budget.prefill.arenaSlack)]);
  rows.push(
    ['prefill total (worst chunk)', ...gib((x) => x.budget.prefill.total)],
    ['decode total (last token)', ...gib((x) => x.budget.decode.total)],
    [`vision batch of ${s.budget.vision.batch}`, ...gib((x) => x.budget.vision.activations)],
    [gpu ? 'host arrays (not on the GPU)' : 'host arrays (float32 sequences)', ...gib((x) => x.budget.host.total)],
  );
  rows.push([gpu ? 'CUDA/runtime overhead' : 'sessions + JS heap overhead', ...gib((x) => x.budget.overhead)]);
  if (!gpu) rows.push(['load peak (weights read + pre-packed)', ...gib((x) => x.budget.loadPeak)]);
  rows.push([gpu ? 'PEAK GPU memory' : 'PEAK process memory', ...both((x) => `${formatGiB(x.budget.peak)} (${x.budget.peakPhase})`)]);

  const m = plan.model;
  const head = [
    `model ${m.id} (${m.source}): decoder ${m.text.numLayers} layers × ${m.text.hiddenSize}, ${m.text.numHeads} heads / ${m.text.numKvHeads} KV heads × ${m.text.headDim}; ` +
      `vision ${m.vision.layersUsed} layers × ${m.vision.hiddenSize}, ${m.vision.gridSize}×${m.vision.gridSize} patches`,
    `${plan.frames} frames, ${plan.dtype}, prefill chunk ${plan.chunk}, question ${plan.questionTokens} tokens, up to ${plan.maxNewTokens} new tokens; ` +
      `target ${plan.target}, attention ${plan.attention === 'flash' ? 'fused (flash)' : 'materialised fp32 scores'}`,
  ];
  const out = [...head, '', table(rows), '', `chosen vs stock: ${plan.reduction >= 0 ? '−' : '+'}${Math.abs(plan.reduction * 100).toFixed(1)}% peak memory`];
  if (gpu) {
    out.push('', `GPU instance types (one job per GPU, ${Math.round(GPU_USABLE_FRACTION * 100)}% of GPU memory usable):`);
    const instRows: [string, string, string][] = [['instance (GPU memory)', 'stock', 'chosen']];
    s.fits.forEach((f, i) => instRows.push([`${f.instanceType} (${f.gpuMemoryGiB} GiB)`, f.fits ? 'fits' : '-', c.fits[i].fits ? 'fits' : '-']));
    out.push(table(instRows));
  }
  out.push('', `Bytes across the runtime boundary per job (chosen settings, ${plan.questions} question${plan.questions > 1 ? 's' : ''}, the graph's token loop; on CUDA these are PCIe copies):`);
  out.push(...ledgerLines(plan.costs.chosen.transfers, plan.costs.chosen.hostLoopTransfers));
  if (gpu) {
    if (plan.costs.chosen.instances.length === 0) {
      out.push('', 'Time and cost: the chosen settings fit on no GPU instance type.');
    } else {
      out.push(
        '',
        `Time and cost per video (${plan.questions} question${plan.questions > 1 ? 's' : ''} of ${plan.questionTokens} tokens, ${plan.answerTokens} answer tokens each, ${(plan.videoSeconds / 60).toFixed(0)}-minute video; one job per GPU):`,
        costTable(plan),
        `assumes ${EFFICIENCY.compute * 100}% of the GPU's peak fp16 tensor FLOP/s for vision and prefill, ${EFFICIENCY.memory * 100}% of its memory bandwidth for decode ` +
          `(+${(DECODE_LAUNCH_SECONDS_PER_LAYER * 1e6).toFixed(0)} µs of kernel launches per layer per token), ${EFFICIENCY.hostLink * 100}% of its host link for transfers; ` +
          'on-demand us-east-1 prices (override with --price TYPE=USD). Predictions: `npm run gpu:check` measures them on a GPU.',
      );
    }
  }
  if (m.notes.length > 0) out.push('', ...m.notes.map((n) => `note: ${n}`));
  return out.join('\n');
}
