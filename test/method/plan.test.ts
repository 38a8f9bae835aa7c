/**
 * The memory planner: parameter counts and every budget term checked against hand-derived values,
 * the side-by-side stock/chosen scenarios, instance fitting, and the `longsight plan` command.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GPU_INSTANCE_TYPES, PAPER_POOLING, RopeExtensionSchema, STOCK_POOLING } from '../../lib/contracts';
import { ensureTinyModel } from '../../container/convert/tiny-model-package';
import { runPlanCommand } from '../../container/plan/command';
import { CPU_JS_HEAP_BYTES, CPU_SESSION_OVERHEAD_BYTES, decoderParams, GPU_USABLE_FRACTION, planMemory, visionParams } from '../../container/plan/memory';
import { loadPlanModel, PlanInputError, type PlanModel } from '../../container/plan/model-dims';

const CONFIG_7B = path.join(__dirname, '../../container/plan/models/llava-onevision-qwen2-7b-ov.config.json');

describe('model dimensions and parameter counts', () => {
  const m7 = loadPlanModel(CONFIG_7B);

  it('reads the 7B config.json', () => {
    expect(m7.text).toEqual({ hiddenSize: 3584, intermediateSize: 18944, numLayers: 28, numHeads: 28, numKvHeads: 4, headDim: 128, vocabSize: 152064, ropeTheta: 1e6, maxPositionEmbeddings: 32768, tieWordEmbeddings: false });
    expect(m7.vision).toEqual({ hiddenSize: 1152, intermediateSize: 4304, layersUsed: 26, numHeads: 16, patchSize: 14, gridSize: 27, imageSize: 384 });
  });

  it('counts the Qwen2-7B decoder graph as 7,615,616,512 parameters: 7.07B + the loop\'s embedding table (Qwen2-7B\'s published 7.62B)', () => {
    // per layer: q 3584·3584+3584, k/v 2·(3584·512+512), o 3584·3584, MLP 3·3584·18944, 2 norms = 233,057,792
    // 28 layers + final norm 3584 + lm_head 152064·3584 + (untied) the token-embedding table 152064·3584
    expect(decoderParams(m7.text)).toBe(28 * 233_057_792 + 3584 + 2 * 152064 * 3584);
    expect(decoderParams(m7.text)).toBe(7_615_616_512);
    // Tied (the 0.5B): one matrix serves lm_head and the loop.
    expect(decoderParams({ ...m7.text, tieWordEmbeddings: true })).toBe(28 * 233_057_792 + 3584 + 152064 * 3584);
  });

  it('counts SigLIP-so400m (26 layers) + projector as 414,726,432 parameters', () => {
    // layer 15,239,504 × 26 + patch conv 678,528 + positions 839,808 + projector 16,980,992
    expect(visionParams(m7)).toBe(414_726_432);
  });

  it('names the problem in a bad config', () => {
    expect(() => loadPlanModel('/nonexistent/config.json')).toThrow(/no such file/);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plan-'));
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ model_type: 'llama', text_config: {}, vision_config: {} }));
    expect(() => loadPlanModel(path.join(dir, 'config.json'))).toThrow(PlanInputError);
    expect(() => loadPlanModel(path.join(dir, 'config.json'))).toThrow(/model_type/);
    fs.writeFileSync(path.join(dir, 'config.json'), '{');
    expect(() => loadPlanModel(dir)).toThrow(/not readable JSON/);
    fs.rmSync(dir, { recursive: true });
  });

  it('reads a converted package: file sizes as weights, the SigLIP MLP width solved from them', async () => {
    const { packageDir: pkg } = await ensureTinyModel({ preset: 'wide' });
    const m = loadPlanModel(pkg);
    expect(m.source).toBe('package');
    // The wide preset's vision MLP width is 256; the ONNX protobuf's own bytes bias the solution
    // slightly upwards on a model this small (negligible at SigLIP-so400m's size).
    expect(Math.abs(m.vision.intermediateSize - 256) / 256).toBeLessThan(0.03);
    expect(m.fileBytes!.embeddings).toBe(m.text.vocabSize * m.text.hiddenSize * 4);
    const plan = planMemory({ model: m, frames: 8, pooling: PAPER_POOLING, chunk: 512, dtype: 'fp32' });
    expect(plan.chosen.budget.weights.fromFiles).toBe(true);
    expect(plan.chosen.budget.weights.decoder).toBe(m.fileBytes!.decoder);
  }, 120_000);
});

describe('planMemory', () => {
  // A small model with round numbers; every term below is worked out by hand.
  const small: PlanModel = {
    id: 'hand',
    source: 'config.json',
    vision: { hiddenSize: 32, intermediateSize: 64, layersUsed: 1, numHeads: 2, patchSize: 14, gridSize: 27, imageSize: 384 },
    text: { hiddenSize: 64, intermediateSize: 128, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 16, vocabSize: 1000, ropeTheta: 1e6, maxPositionEmbeddings: 32768, tieWordEmbeddings: true },
    notes: [],
  };

  it('works out every prefill and decode term (hand-derived)', () => {
    // 1 frame, stock: 196 + newline = 197 visual; prompt 197 + 9 template + 0 question = 206; sequence 216.
    const plan = planMemory({ model: small, frames: 1, pooling: STOCK_POOLING, chunk: 100, dtype: 'fp32', questionTokens: 0, maxNewTokens: 10, target: 'cpu' });
    const s = plan.stock;
    expect([s.visualTokens, s.promptTokens, s.sequenceTokens]).toEqual([197, 206, 216]);
    const b = s.budget;
    expect(b.kvBytesPerToken).toBe(512); // 2·2 layers·2 kv heads·16·4 bytes
    expect(b.kvCache).toBe(512 * 216);
    // Chunks 100, 100, 6: the middle full chunk (C = 100 on 100 cached) outweighs the last (6 on 200).
    expect(b.prefill).toEqual({
      chunk: 100,
      cachedBefore: 100,
      kvPast: 51_200,
      kvPresent: 102_400,
      attentionScores: 3_200, // flash (fp32 CPU prefill): 2 stats·4 heads·100·4
      hidden: 332_800, // 3·100·64·4 + 100·(3·64 + 3·128 + 64)·4
      mlp: 358_400, // 100·7·128·4
      inputs: 39_424, // 100·64·4 + rotary tables 216 positions·16·4
      logits: 4_000,
      arenaSlack: 51_200,
      total: 942_624,
    });
    expect(b.decode).toEqual({
      kvPast: 110_080, // 215 cached
      kvPresent: 110_592,
      attentionScores: 3_456, // decode runs the naive kernel: 4 heads·1·216·4
      hidden: 3_328,
      mlp: 3_584,
      inputs: 14_080,
      logits: 4_000,
      arenaSlack: 110_080,
      total: 359_200,
    });
    expect(b.host).toEqual({ visualSequence: 197 * 64 * 4, promptEmbeddings: 206 * 64 * 4, total: 403 * 64 * 4 });
    expect(b.overhead).toBe(2 * CPU_SESSION_OVERHEAD_BYTES + CPU_JS_HEAP_BYTES);
    const steady = b.weights.resident + b.overhead + Math.max(b.prefill.total, b.decode.total, b.vision.activations) + b.host.total;
    expect(b.peak).toBe(Math.max(steady, b.loadPeak));
  });

  it('materialises scores for fp16 on the CPU (heads·C·(P+C)·4) and uses flash on a GPU', () => {
    const cpu = planMemory({ model: small, frames: 1, pooling: STOCK_POOLING, chunk: 100, dtype: 'fp16', questionTokens: 0, maxNewTokens: 10, target: 'cpu' });
    expect(cpu.attention).toBe('materialized');
    const p = cpu.stock.budget.prefill;
    expect(p.attentionScores).toBe(4 * p.chunk * (p.cachedBefore + p.chunk) * 4);
    const gpu = planMemory({ model: small, frames: 1, pooling: STOCK_POOLING, chunk: 100, dtype: 'fp16', target: 'gpu' });
    expect(gpu.attention).toBe('flash');
    expect(gpu.stock.budget.host.total).toBeGreaterThan(0);
    expect(gpu.stock.budget.peak).toBe(gpu.stock.budget.weights.resident + gpu.stock.budget.overhead + Math.max(gpu.stock.budget.prefill.total, gpu.stock.budget.decode.total, gpu.stock.budget.vision.activations));
  });

  it('7B at 256 frames: 50,177 vs 15,617 visual tokens, s = 2.49, the KV cache by hand, instance fits', () => {
    const rope = RopeExtensionSchema.parse({});
    const plan = planMemory({ model: loadPlanModel(CONFIG_7B), frames: 256, pooling: PAPER_POOLING, chunk: 2048, dtype: 'fp16', questionTokens: 32, maxNewTokens: 256, rope });
    expect(plan.stock.visualTokens).toBe(50_177);
    expect(plan.chosen.visualTokens).toBe(15_617);
    expect(plan.stock.ropeMode).toBe('off');
    expect(plan.stock.ropeScale).toBe(1);
    expect(plan.chosen.ropeScale).toBeCloseTo(15_617 / 6272, 12);
    // 2·28·4·128·2 bytes per token × (50,177 + 9 + 32 + 256)
    expect(plan.stock.budget.kvCache).toBe(57_344 * 50_474);
    expect(plan.chosen.budget.peak).toBeLessThan(plan.stock.budget.peak);
    expect(plan.reduction).toBeCloseTo(1 - plan.chosen.budget.peak / plan.stock.budget.peak, 12);
    for (const s of [plan.stock, plan.chosen]) {
      expect(s.fits.map((f) => f.instanceType)).toEqual(Object.keys(GPU_INSTANCE_TYPES));
      for (const f of s.fits) expect(f.fits).toBe(s.budget.peak <= f.gpuMemoryGiB * 2 ** 30 * GPU_USABLE_FRACTION);
    }
    expect(plan.stock.fits.find((f) => f.instanceType === 'g4dn.xlarge')!.fits).toBe(false); // 16 GiB < 14 GiB of weights + cache
    expect(plan.chosen.fits.find((f) => f.instanceType === 'p5.48xlarge')!.fits).toBe(true);
  });

  it('rejects bad inputs', () => {
    expect(() => planMemory({ model: small, frames: 0, pooling: PAPER_POOLING, chunk: 100, dtype: 'fp16' })).toThrow(/frames/);
    expect(() => planMemory({ model: small, frames: 4, pooling: PAPER_POOLING, chunk: 0, dtype: 'fp16' })).toThrow(/chunk/);
    expect(() => planMemory({ model: small, frames: 4, pooling: PAPER_POOLING, chunk: 10, dtype: 'bf16' as 'fp16' })).toThrow(/dtype/);
  });
});

describe('longsight plan', () => {
  it('prints the side-by-side table for the 7B config', () => {
    let out = '';
    const plan = runPlanCommand(['--model', CONFIG_7B, '--frames', '256', '--pooling', '4,2,8', '--chunk', '2048', '--dtype', 'fp16'], (t) => (out += t));
    expect(plan.frames).toBe(256);
    expect(out).toMatch(/visual tokens \(incl\. image_newline\)\s+50,177\s+15,617/);
    expect(out).toMatch(/RoPE scale s\s+1 \(stock\)\s+2\.490/);
    expect(out).toMatch(/PEAK GPU memory/);
    expect(out).toMatch(/g5\.xlarge \(24 GiB\)/);
    expect(out).toMatch(/chosen vs stock: −\d+\.\d% peak memory/);
  });

  it('prints JSON and honours the rope, cpu target and token options', () => {
    let out = '';
    runPlanCommand(['--model', CONFIG_7B, '--frames', '64', '--rope-mode', 'position-interpolation', '--visual-window', '1000', '--target', 'cpu', '--max-new-tokens', '16', '--question-tokens', '8', '--json'], (t) => (out += t));
    const plan = JSON.parse(out);
    expect(plan.target).toBe('cpu');
    expect(plan.chosen.ropeMode).toBe('position-interpolation');
    expect(plan.chosen.ropeScale).toBeCloseTo(plan.chosen.visualTokens / 1000, 12);
    expect(plan.chosen.sequenceTokens).toBe(plan.chosen.visualTokens + 9 + 8 + 16);
  });

  it('shows the transfer ledger of 7B at 256 frames, worked out by hand, and the graph loop against the host loop', () => {
    let out = '';
    const plan = runPlanCommand(['--model', CONFIG_7B, '--frames', '256', '--dtype', 'fp16'], (t) => (out += t));
    const t = plan.costs.chosen.transfers;
    expect(t.byKind.pixels).toBe(256 * 3 * 384 * 384 * 4); // float32 pixels, once
    expect(t.byKind.visionOut).toBe((64 * 196 + 192 * 16) * 3584 * 4); // pooled tokens only: 15,616 rows, not 186,624 features
    // One question: the whole prompt (15,617 visual + 4 prefix + 32 question + 5 template tokens) in one run, fp16 rows.
    expect(t.byKind.embeddings).toBe((15617 + 4 + 32 + 5) * 3584 * 2);
    expect([t.byKind.kvIn, t.byKind.kvOut, t.byKind.logits]).toEqual([0, 0, 0]);
    expect(t.byKind.tokenIds + t.byKind.logprobs).toBe(256 * 12);
    expect(t.perGeneratedToken).toBe(12);
    // The host loop feeds and fetches the whole fp16 cache every step: 57,344 bytes per cached token each way.
    const kvPerToken = 2 * 28 * 4 * 128 * 2;
    expect(kvPerToken).toBe(57_344);
    expect(plan.costs.chosen.hostLoopTransfers.perGeneratedToken).toBeGreaterThan(2 * 15_658 * kvPerToken);
    expect(out).toMatch(/per generated token: 12 B \(the host loop would move 1\.\d+ GB a token/);
    // Several questions: the prefix's KV crosses out once and in once per question.
    const three = runPlanCommand(['--model', CONFIG_7B, '--frames', '256', '--dtype', 'fp16', '--questions', '3', '--json'], () => undefined);
    const prefix = 15617 + 4;
    expect(three.costs.chosen.transfers.byKind.kvOut).toBe(prefix * kvPerToken);
    expect(three.costs.chosen.transfers.byKind.kvIn).toBe(3 * prefix * kvPerToken);
  });

  it('predicts time and cost per video on the instance types that fit, from peak rates and prices', () => {
    let out = '';
    const plan = runPlanCommand(['--model', CONFIG_7B, '--frames', '256', '--dtype', 'fp16', '--answer-tokens', '100', '--video-minutes', '30', '--price', 'g6e.xlarge=2'], (t) => (out += t));
    const chosen = plan.costs.chosen.instances;
    expect(chosen.map((i) => i.instanceType)).toEqual(plan.chosen.fits.filter((f) => f.fits).map((f) => f.instanceType));
    const l40s = chosen.find((i) => i.instanceType === 'g6e.xlarge')!;
    expect(l40s.gpu).toBe('L40S');
    // Decode at batch 1 is memory-bound: ~(14.2 GB of weights + 3 × 0.9 GB of cache moved) / (864 GB/s · 0.7) ≈ 28 ms, + launches.
    expect(l40s.times.decodeMsPerToken).toBeGreaterThan(20);
    expect(l40s.times.decodeMsPerToken).toBeLessThan(40);
    expect(l40s.times.decodeS).toBeCloseTo((100 * l40s.times.decodeMsPerToken) / 1000, 0);
    expect(l40s.times.totalS).toBeCloseTo(l40s.times.visionS + l40s.times.prefillS + l40s.times.decodeS + l40s.times.transferS, 9);
    expect(l40s.usdPerHour).toBe(2);
    expect(l40s.usdPerVideo).toBeCloseTo((l40s.times.totalS / 3600) * 2, 12);
    expect(l40s.usdPerVideoHour).toBeCloseTo(l40s.usdPerVideo * 2, 12); // a 30-minute video
    // The p5 has 8 GPUs: one job uses one of them, at an eighth of the instance price.
    const p5 = chosen.find((i) => i.instanceType === 'p5.48xlarge')!;
    expect(p5.usdPerGpuHour).toBeCloseTo(p5.usdPerHour / 8, 12);
    // The faster GPU finishes sooner; the stock pipeline (3.2× the visual tokens) takes longer where it fits.
    expect(p5.times.totalS).toBeLessThan(l40s.times.totalS);
    const stockL40s = plan.costs.stock.instances.find((i) => i.instanceType === 'g6e.xlarge')!;
    expect(stockL40s.times.prefillS).toBeGreaterThan(3 * l40s.times.prefillS);
    expect(out).toMatch(/g6e\.xlarge \(L40S\)\s+\d/);
    expect(out).toMatch(/\$\/video-hour/);
  });

  it('explains bad arguments', () => {
    const run = (args: string[]) => () => runPlanCommand(args, () => undefined);
    expect(run(['--model', CONFIG_7B, '--price', 'g9.huge=1'])).toThrow(/--price names an unknown instance type/);
    expect(run(['--model', CONFIG_7B, '--price', 'cheap'])).toThrow(/--price must be TYPE=USD/);
    expect(run(['--model', CONFIG_7B, '--answer-tokens', '9999'])).toThrow(/answer tokens must be an integer from 0 to max new tokens/);
    expect(run([])).toThrow(/--model is required/);
    expect(run(['--model', CONFIG_7B, '--pooling', '4,2'])).toThrow(/--pooling must be K,s_h,s_l/);
    expect(run(['--model', CONFIG_7B, '--frames', '5000'])).toThrow(/--frames/);
    expect(run(['--model', CONFIG_7B, '--dtype', 'int8'])).toThrow(/--dtype must be fp16 or fp32/);
    expect(run(['--model', CONFIG_7B, '--bogus', '1'])).toThrow(/bogus/);
    expect(run(['--model', '/nowhere'])).toThrow(/no such file/);
  });
});
