/** Renders a MemoryPlan as the readable side-by-side table `longsight plan` prints. */
import type { PoolingSchedule } from '../../lib/contracts';
import type { MemoryPlan, ScenarioPlan } from './memory';
import { GPU_USABLE_FRACTION } from './memory';

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

export function formatPlan(plan: MemoryPlan): string {
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
    ['weights: decoder (incl. lm_head)', ...gib((x) => x.budget.weights.decoder)],
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
  if (m.notes.length > 0) out.push('', ...m.notes.map((n) => `note: ${n}`));
  return out.join('\n');
}
