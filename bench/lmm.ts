/**
 * `npm run bench:lmm`: the LMM runtime on the CPU execution provider with a random checkpoint of
 * llava-onevision-qwen2-0.5b-ov-hf's shape (SigLIP-so400m 26 layers + Qwen2-0.5B decoder), generated
 * by the test-checkpoint generator and converted by our converter into .cache/ (never committed).
 *
 * Every timed figure is the median of `--runs` (≥ 3) runs; each comparison alternates its two sides
 * in this one process and reports the ratio of the medians:
 *   1. vision frames/s and prefill tokens/s, each beside a GEMM rate measured interleaved with it on
 *      the model's own MatMuls (every SigLIP layer's; every decoder layer's at the prefill chunk),
 *      chained in one run as long as the model's;
 *   2. decode tokens/s: the host loop (one run per token, the KV cache in and out every step) vs the
 *      graph's loop (one run per answer), same prompt, same greedy tokens;
 *   3. the transfer ledger of a 64-frame job (measured; the planner's replay beside it);
 *   4. the multi-question cost: (8 questions in one job) ÷ (1 question in one job) at 64 frames, with a
 *      2-layer vision tower (vision is the same for both sides; the full tower's measured per-frame
 *      time is added back for the full-model ratio), and every question's tokens checked against its
 *      own one-question job on the `wide` checkpoint (seed 7, 4 frames), whose answers differ by question;
 *   5. cancellation: an abort during a long generation in the worker's isolated engine — time until the
 *      job is rejected, and until the engine answers again (the rest of the run it could not interrupt).
 *
 *   npm run bench:lmm [-- --threads 2] [--runs 3] [--prompt 1024] [--decode 32] [--frames 64]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { DEFAULT_SETTINGS, InferenceSettingsSchema, PAPER_POOLING, questionId, type InferenceSettings, type Question } from '../lib/contracts';
import { ensureTinyModel } from '../container/convert/tiny-model-package';
import { GraphBuilder } from '../container/onnx/graph-builder';
import { prefillFlops, visionFlopsPerFrame } from '../container/plan/time';
import { loadPlanModel, type PlanModel } from '../container/plan/model-dims';
import { generate } from '../container/runtime/generate';
import { createIsolatedEngine } from '../container/runtime/isolated-engine';
import { loadModel, type LoadedModel } from '../container/runtime/loaded-model';
import { createOnnxEngine } from '../container/runtime/onnx-engine';
import { jobRotary } from '../container/runtime/rotary';
import { argmax } from '../container/runtime/sampler';
import { benchLog, ensureBenchPackage, median } from './support/bench-model';

const log = benchLog('lmm');
const fmt = (xs: number[], digits = 2) => `median ${median(xs).toFixed(digits)} (runs ${xs.map((x) => x.toFixed(digits)).join(', ')})`;

// ------------------------------------------------------------------ GEMM rate on given shapes

/**
 * The reference GEMM rate: a session holding only a transformer's MatMuls, [rows, k]·[k, n] for each
 * (k, n) of one layer, chained layer after layer (each MatMul takes the first k columns of the one
 * before) for as many layers as the model, weights as initializers as in the model graphs. One run
 * then lasts about as long as the model's own and moves the same weights, so the per-run overhead
 * of `session.run` weighs on both alike and the fraction below cannot exceed what the MatMuls allow.
 */
async function gemmSession(threads: number, rows: number, shapes: [number, number][], layers: number): Promise<{ run(): Promise<number>; flops: number; release(): Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'longsight-gemm-'));
  const g = new GraphBuilder('gemm_probe', path.join(dir, 'gemm.onnx'));
  const width = shapes[0][0];
  let h = g.input('x', 'float32', [rows, width]);
  let cols = width;
  for (let l = 0; l < layers; l++) {
    shapes.forEach(([k, n], i) => {
      if (k > cols) throw new Error(`gemm chain: ${k} columns asked of ${cols}`);
      const x = k === cols ? h : g.op('Slice', [h, g.constInt64([0]), g.constInt64([k]), g.constInt64([1])]);
      const w = g.initializer(`w${l}_${i}`, 'float32', [k, n], new Uint8Array(new Float32Array(k * n).map((_, j) => Math.sin(j + l) * 0.01).buffer));
      h = g.op('MatMul', [x, w]);
      cols = n;
    });
  }
  g.output(h, 'y', 'float32', [rows, cols]);
  const s = await ort.InferenceSession.create(g.save([{ domain: '', version: 17 }]), { executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  const feeds = { x: new ort.Tensor('float32', new Float32Array(rows * width).fill(0.5), [rows, width]) };
  await s.run(feeds);
  return {
    flops: layers * shapes.reduce((a, [k, n]) => a + 2 * rows * k * n, 0),
    async run() {
      const t = performance.now();
      await s.run(feeds);
      return (performance.now() - t) / 1000;
    },
    async release() {
      await s.release();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ------------------------------------------------------------------ the sections

async function visionAndPrefill(model: LoadedModel, plan: PlanModel, threads: number, runs: number, promptTokens: number, say: (s: string) => void): Promise<number> {
  const m = model.manifest;
  const v = plan.vision;
  const t = plan.text;
  const s = m.vision.imageSize;
  const frames = 2;
  const pixels = Float32Array.from({ length: frames * 3 * s * s }, (_, i) => Math.sin(i * 0.01));
  // Per layer: QKV, output projection, MLP up, MLP down (SigLIP: GELU MLP; Qwen2: gate and up fused).
  const visionGemm = await gemmSession(threads, v.gridSize ** 2, [[v.hiddenSize, 3 * v.hiddenSize], [v.hiddenSize, v.hiddenSize], [v.hiddenSize, v.intermediateSize], [v.intermediateSize, v.hiddenSize]], v.layersUsed);
  const chunk = 512;
  const qkv = (t.numHeads + 2 * t.numKvHeads) * t.headDim;
  const decoderGemm = await gemmSession(threads, chunk, [[t.hiddenSize, qkv], [t.numHeads * t.headDim, t.hiddenSize], [t.hiddenSize, 2 * t.intermediateSize], [t.intermediateSize, t.hiddenSize]], t.numLayers);
  const h = m.text.hiddenSize;
  const rotary = jobRotary(model.decoder, { headDim: m.text.headDim, ropeTheta: m.text.ropeTheta, languageWindow: m.text.maxPositionEmbeddings, rope: DEFAULT_SETTINGS.rope, visualTokens: 0, positions: promptTokens + 1 });
  const embeds = Float32Array.from({ length: promptTokens * h }, (_, i) => Math.sin(i * 0.001) * 0.5);
  await model.vision.encode(pixels.subarray(0, 3 * s * s), 1, 14); // warm-up
  await model.decoder.prefill(embeds.subarray(0, 16 * h), 16, model.decoder.emptyCache(), rotary.tensors, 16);
  const visionS: number[] = [];
  const visionGemmRate: number[] = [];
  const prefillS: number[] = [];
  const prefillGemmRate: number[] = [];
  for (let r = 0; r < runs; r++) {
    log(`vision + prefill, run ${r + 1}/${runs} …`);
    let t0 = performance.now();
    await model.vision.encode(pixels, frames, 14);
    visionS.push((performance.now() - t0) / 1000);
    visionGemmRate.push(visionGemm.flops / (await visionGemm.run()) / 1e9);
    t0 = performance.now();
    await model.decoder.prefill(embeds, promptTokens, model.decoder.emptyCache(), rotary.tensors, chunk);
    prefillS.push((performance.now() - t0) / 1000);
    prefillGemmRate.push(decoderGemm.flops / (await decoderGemm.run()) / 1e9);
  }
  await visionGemm.release();
  await decoderGemm.release();
  const vFlops = frames * visionFlopsPerFrame(plan);
  const pFlops = prefillFlops(t, promptTokens, 0);
  const visionRate = visionS.map((x) => vFlops / x / 1e9);
  const prefillRate = prefillS.map((x) => pFlops / x / 1e9);
  say(`| vision (SigLIP-so400m 26 layers + projector + pooling, batch ${frames}) | ${median(visionS.map((x) => frames / x)).toFixed(3)} frames/s (${(median(visionS) / frames).toFixed(1)} s/frame) | ${median(visionRate).toFixed(1)} GFLOP/s vs GEMM ${median(visionGemmRate).toFixed(1)} GFLOP/s on SigLIP's MatMuls (all layers, chained), interleaved: ${(median(visionRate.map((x, i) => x / visionGemmRate[i])) * 100).toFixed(0)}% |`);
  say(`| prefill (${promptTokens} tokens, chunk ${chunk}, one run) | ${median(prefillS.map((x) => promptTokens / x)).toFixed(1)} tokens/s | ${median(prefillRate).toFixed(1)} GFLOP/s vs GEMM ${median(prefillGemmRate).toFixed(1)} GFLOP/s on the decoder's MatMuls (all layers, chained) at ${chunk} rows, interleaved: ${(median(prefillRate.map((x, i) => x / prefillGemmRate[i])) * 100).toFixed(0)}% |`);
  return median(visionS) / frames;
}

async function decodeLoops(model: LoadedModel, runs: number, promptTokens: number, decodeTokens: number, say: (s: string) => void): Promise<void> {
  const m = model.manifest;
  const h = m.text.hiddenSize;
  const rotary = jobRotary(model.decoder, { headDim: m.text.headDim, ropeTheta: m.text.ropeTheta, languageWindow: m.text.maxPositionEmbeddings, rope: DEFAULT_SETTINGS.rope, visualTokens: 0, positions: promptTokens + decodeTokens + 1 });
  const embeds = Float32Array.from({ length: promptTokens * h }, (_, i) => Math.sin(i * 0.002) * 0.5);
  const start = await model.decoder.prefill(embeds, promptTokens, model.decoder.emptyCache(), rotary.tensors, 512);
  const last = embeds.subarray((promptTokens - 1) * h);
  const prefix = await model.decoder.prefill(embeds.subarray(0, (promptTokens - 1) * h), promptTokens - 1, model.decoder.emptyCache(), rotary.tensors, 512);
  const host: number[] = [];
  const graph: number[] = [];
  let same = true;
  for (let r = 0; r < runs; r++) {
    log(`decode: host loop vs graph loop, run ${r + 1}/${runs} …`);
    let t0 = performance.now();
    const a = await generate(model.decoder, model.embeddings, start, rotary.tensors, { maxNewTokens: decodeTokens, stopIds: new Set(), sampler: argmax });
    host.push(decodeTokens / ((performance.now() - t0) / 1000));
    // The graph run also feeds the prompt's last token (the host loop's prefill did): one more position, same tokens.
    t0 = performance.now();
    const b = await model.decoder.generate(last, 1, prefix.cache, rotary.tensors, { maxNewTokens: decodeTokens, stopIds: [], chunk: 512, temperature: 0, seed: 0 });
    graph.push(decodeTokens / ((performance.now() - t0) / 1000));
    same &&= JSON.stringify(a.ids) === JSON.stringify(b.ids);
  }
  const ratio = host.map((x, i) => graph[i] / x);
  say(`| decode, ${decodeTokens} tokens after ${promptTokens}: host loop | ${fmt(host)} tokens/s | — |`);
  say(`| decode, same: graph loop (ONNX Loop, one run) | ${fmt(graph)} tokens/s | graph/host ${median(ratio).toFixed(2)}×; greedy tokens identical: ${same} |`);
}

async function jpegFrames(n: number): Promise<Buffer[]> {
  return Promise.all(Array.from({ length: n }, (_, f) => sharp({ create: { width: 384, height: 384, channels: 3, background: { r: (40 * f) % 256, g: 120, b: 200 } } }).png().toBuffer()));
}

const QUESTIONS: Question[] = [
  'What happens in this video?', 'How many people appear?', 'What colours dominate the scene?', 'Is it day or night?',
  'Describe the setting.', 'What is the main object?', 'Does the camera move?', 'Summarise the video in one sentence.',
].map((text) => ({ id: questionId(text), text }));

async function multiQuestion(threads: number, runs: number, frames: number, visionSecondsPerFrame: number, say: (s: string) => void): Promise<void> {
  // The 0.5B decoder with a 2-layer vision tower: vision costs the same on both sides (45 s a frame here at full depth).
  const { packageDir } = await ensureTinyModel({ preset: 'qwen2-0.5b', dtype: 'BF16', seed: 1, vision: { numLayers: 2 } });
  const engine = await createOnnxEngine({ modelDir: packageDir, threads, visionBatch: 8 });
  const video = await jpegFrames(frames);
  const settings: InferenceSettings = InferenceSettingsSchema.parse({ ...DEFAULT_SETTINGS, pooling: PAPER_POOLING, maxNewTokens: 8 });
  const one: number[] = [];
  const eight: number[] = [];
  let ledger = '';
  for (let r = 0; r < runs; r++) {
    log(`multi-question at ${frames} frames, run ${r + 1}/${runs}: 1 question …`);
    let t0 = performance.now();
    const a = await engine.answer({ frames: video, questions: QUESTIONS.slice(0, 1), settings });
    one.push((performance.now() - t0) / 1000);
    log(`multi-question at ${frames} frames, run ${r + 1}/${runs}: 8 questions …`);
    t0 = performance.now();
    const b = await engine.answer({ frames: video, questions: QUESTIONS, settings });
    eight.push((performance.now() - t0) / 1000);
    const k = b.transferBytes.byKind;
    ledger = `${a.visualTokens} visual tokens; 1 question: ${(a.transferBytes.total / 1e6).toFixed(1)} MB (KV 0 B either way); 8 questions: ${(b.transferBytes.total / 1e6).toFixed(1)} MB (KV out ${(k.kvOut / 1e6).toFixed(1)} MB once, in ${(k.kvIn / 1e6).toFixed(1)} MB = 8 × out), ${b.transferBytes.perGeneratedToken} B per generated token`;
  }
  await engine.close();
  const ratios = eight.map((x, i) => x / one[i]);
  const fullVision = frames * visionSecondsPerFrame;
  say(`| multi-question, ${frames} frames (paper pooling), ≤ 8 new tokens, 2-layer vision: 1 question | ${fmt(one, 1)} s | — |`);
  say(`| same, 8 questions in one job | ${fmt(eight, 1)} s | 8 questions ÷ 1 question = ${median(ratios).toFixed(2)}× (with the full 26-layer tower's ${fullVision.toFixed(0)} s of vision on both sides: ${((median(eight) + fullVision) / (median(one) + fullVision)).toFixed(2)}×) |`);
  say(`| transfer ledger of those jobs | ${ledger} | — |`);
}

async function questionsMatchSeparateRuns(threads: number, say: (s: string) => void): Promise<void> {
  const { packageDir } = await ensureTinyModel({ preset: 'wide', seed: 7 });
  const engine = await createOnnxEngine({ modelDir: packageDir, threads, stopIds: [] });
  // 4 frames and L_v = 64 (s > 1): a setting where this random model's answers differ by question.
  const video = await jpegFrames(4);
  const settings = InferenceSettingsSchema.parse({ ...DEFAULT_SETTINGS, pooling: PAPER_POOLING, maxNewTokens: 12, rope: { ...DEFAULT_SETTINGS.rope, visualContextWindow: 64 } });
  const together = await engine.answer({ frames: video, questions: QUESTIONS, settings });
  let equal = 0;
  for (let i = 0; i < QUESTIONS.length; i++) {
    const alone = await engine.answer({ frames: video, questions: [QUESTIONS[i]], settings });
    if (alone.answers[0].text === together.answers[i].text) equal++;
  }
  await engine.close();
  const distinct = new Set(together.answers.map((a) => a.text)).size;
  say(`| each question of the 8-question job vs its own one-question job (wide checkpoint, seed 7, 4 frames, 12 tokens) | ${equal} of 8 identical; ${distinct} distinct answers among the 8 questions | — |`);
}

async function cancellation(runs: number, say: (s: string) => void): Promise<void> {
  const { packageDir } = await ensureTinyModel({ preset: 'wide' });
  const engine = await createIsolatedEngine({ modelDir: packageDir, threads: 1, stopIds: [] });
  const video = await jpegFrames(1);
  const settings = (n: number) => InferenceSettingsSchema.parse({ ...DEFAULT_SETTINGS, maxNewTokens: n });
  const rejected: number[] = [];
  const free: number[] = [];
  for (let r = 0; r < runs; r++) {
    log(`cancellation, run ${r + 1}/${runs} …`);
    const ac = new AbortController();
    const long = engine.answer({ frames: video, questions: QUESTIONS.slice(0, 1), settings: settings(512), signal: ac.signal }).catch(() => undefined);
    await new Promise((res) => setTimeout(res, 1000));
    const t0 = performance.now();
    ac.abort(new Error('stop'));
    await long;
    rejected.push(performance.now() - t0);
    await engine.answer({ frames: video, questions: QUESTIONS.slice(0, 1), settings: settings(1) });
    free.push((performance.now() - t0) / 1000);
  }
  await engine.close();
  say(`| cancellation: abort 1 s into a 512-token answer (wide, isolated engine): job rejected after | ${fmt(rejected, 1)} ms | the engine answers again after ${fmt(free, 1)} s (the rest of the one run onnxruntime cannot interrupt; a stopping worker kills it instead) |`);
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      threads: { type: 'string', default: String(os.cpus().length) },
      runs: { type: 'string', default: '3' },
      prompt: { type: 'string', default: '1024' },
      decode: { type: 'string', default: '32' },
      frames: { type: 'string', default: '64' },
    },
  });
  const threads = Number(values.threads);
  const runs = Number(values.runs);
  const promptTokens = Number(values.prompt);
  const decodeTokens = Number(values.decode);
  const frames = Number(values.frames);
  if (runs < 3) throw new Error('--runs must be at least 3 (every timed figure is a median)');
  const lines: string[] = [];
  const say = (line: string) => {
    lines.push(line);
    console.log(line);
  };
  say(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; onnxruntime-node ${require('onnxruntime-node/package.json').version}, CPU EP, ${threads} intra-op threads; load average at start ${os.loadavg()[0].toFixed(1)}; ${runs} runs per figure`);
  say('');
  say('| measure | result | beside |');
  say('|---|---|---|');
  const pkg = await ensureBenchPackage();
  const model = await loadModel(pkg, { executionProvider: 'cpu', threads });
  const plan = loadPlanModel(pkg);
  const visionPerFrame = await visionAndPrefill(model, plan, threads, runs, promptTokens, say);
  await decodeLoops(model, runs, promptTokens, decodeTokens, say);
  await model.close();
  await multiQuestion(threads, runs, frames, visionPerFrame, say);
  await questionsMatchSeparateRuns(threads, say);
  await cancellation(runs, say);
  say('');
  say(`load average at the end ${os.loadavg()[0].toFixed(1)}`);
  console.log('\n--- summary ---\n' + lines.join('\n'));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
