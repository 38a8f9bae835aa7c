/**
 * The planner's estimate against measured memory on the CPU: a small converted model (the "wide"
 * random checkpoint: 3 decoder layers of width 192, 6 heads / 2 KV heads, the real 152K vocabulary)
 * runs a job's decoder side in a fresh child process (container/plan/measure-decoder.ts: real
 * onnxruntime-node CPU EP, the runtime's own pooling builder, prompt assembly, RoPE tables, chunked
 * prefill and decode; random projected features stand in for the vision tower).
 *
 * What is compared: the child's peak RSS (the kernel's VmHWM, reset after the decoder has loaded so
 * the load transient is reported apart) minus its RSS before loading, against
 * `decoderProcessPeak` — decoder weights + one session's overhead + the JS heap allowance + the
 * larger of the prefill and decode phases + the host arrays. The child collects garbage after each
 * decoder step, so the peak is live memory, not dead caches waiting for V8 (see MeasureRequest).
 */
import { PAPER_POOLING, RopeExtensionSchema, STOCK_POOLING } from '../../lib/contracts';
import { ensureTinyModel } from '../../container/convert/tiny-model-package';
import { measureDecoderJob } from '../../container/plan/measure';
import { decoderProcessPeak, planMemory } from '../../container/plan/memory';
import { loadPlanModel } from '../../container/plan/model-dims';

jest.setTimeout(600_000);

describe('planner vs measured peak memory (CPU EP, small model)', () => {
  const rope = RopeExtensionSchema.parse({});
  it.each([
    ['stock pooling, 32 frames, chunk 4096', 32, STOCK_POOLING, 4096],
    ['progressive pooling, 128 frames, chunk 1024', 128, PAPER_POOLING, 1024],
  ] as const)('%s: estimate within 15%% of the measured peak', async (_name, frames, pooling, chunk) => {
    const { packageDir } = await ensureTinyModel({ preset: 'wide' });
    const measured = await measureDecoderJob({ packageDir, frames, pooling, rope, chunk, questionTokens: 16, newTokens: 4, threads: 1, forceGc: true }, { timeoutMs: 240_000 });
    expect(measured.peakReset).toBe(true);
    const plan = planMemory({ model: loadPlanModel(packageDir), frames, pooling, chunk, dtype: 'fp32', questionTokens: 16, maxNewTokens: 4, rope, target: 'cpu' });
    expect(plan.chosen.promptTokens).toBe(measured.promptTokens);
    expect(plan.chosen.ropeScale).toBeCloseTo(measured.ropeScale, 12);
    const estimate = decoderProcessPeak(plan.chosen.budget);
    const error = estimate / measured.peakGrowth - 1;
    // Logged so a failure shows both sides.
    process.stdout.write(`plan-measured ${frames} frames chunk ${chunk}: measured ${(measured.peakGrowth / 2 ** 20).toFixed(1)} MiB, estimated ${(estimate / 2 ** 20).toFixed(1)} MiB (${(error * 100).toFixed(1)}%)\n`);
    expect(Math.abs(error)).toBeLessThanOrEqual(0.15);
  });
});
