/**
 * `npm run bench:lmm`: the LMM runtime on the CPU execution provider with a random checkpoint of
 * llava-onevision-qwen2-0.5b-ov-hf's shape (SigLIP-so400m 26 layers + Qwen2-0.5B decoder), generated
 * by the test-checkpoint generator and converted by our converter into .cache/ (never committed).
 *
 * Measures, each beside the machine's MatMul rate measured through onnxruntime with the same
 * thread count (model FLOPs ÷ time, as a fraction of that rate):
 *   - vision encoding frames/s (SigLIP + projector),
 *   - prefill tokens/s (chunked), decode tokens/s (KV cache),
 *   - peak RSS at 4K and 16K prompt tokens with chunked prefill (each in its own process),
 *   - the multi-question saving: 8 questions in one job (shared prefix) vs 8 one-question jobs.
 *
 *   npm run bench:lmm [-- --threads 2] [--prompt 1024] [--decode 32] [--frames 2] [--rss 4096,16384] [--skip-rss]
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { DEFAULT_SETTINGS, InferenceSettingsSchema, STOCK_POOLING, questionId } from '../lib/contracts';
import { convertCheckpoint } from '../container/convert/convert';
import { GraphBuilder } from '../container/onnx/graph-builder';
import { generateTinyCheckpoint } from '../container/testing/tiny-checkpoint';
import { loadModel, type LoadedModel } from '../container/runtime/loaded-model';
import { createOnnxEngine } from '../container/runtime/onnx-engine';
import { jobRotary } from '../container/runtime/rotary';

const ROOT = path.resolve(__dirname, '..');
const GB = 1024 ** 3;
const MB = 1024 ** 2;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const log = (msg: string) => process.stderr.write(`[bench:lmm ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

// ------------------------------------------------------------------ model on disk

function converterHash(): string {
  const h = createHash('sha256');
  for (const dir of ['container/convert', 'container/onnx', 'container/testing', 'container/safetensors']) {
    for (const f of fs.readdirSync(path.join(ROOT, dir)).sort()) if (f.endsWith('.ts')) h.update(fs.readFileSync(path.join(ROOT, dir, f)));
  }
  return h.digest('hex').slice(0, 12);
}

/**
 * The random checkpoint (generation takes minutes) is kept across runs in .cache/bench-lmm/; the
 * package is rebuilt whenever the converter's sources change.
 */
async function ensureBenchPackage(): Promise<string> {
  const root = path.join(ROOT, '.cache', 'bench-lmm');
  const ckpt = path.join(root, 'checkpoint-qwen2-0.5b-bf16-seed1');
  const pkg = path.join(root, `package-fp32-${converterHash()}`);
  if (fs.existsSync(path.join(pkg, 'READY'))) return pkg;
  if (!fs.existsSync(path.join(ckpt, 'READY'))) {
    fs.rmSync(ckpt, { recursive: true, force: true });
    const t = Date.now();
    log(`generating a random qwen2-0.5b-shaped BF16 checkpoint in ${ckpt} …`);
    generateTinyCheckpoint(ckpt, { preset: 'qwen2-0.5b', dtype: 'BF16', seed: 1 });
    fs.writeFileSync(path.join(ckpt, 'READY'), new Date().toISOString());
    log(`  done in ${((Date.now() - t) / 1000).toFixed(0)} s`);
  }
  for (const old of fs.readdirSync(root)) if (old.startsWith('package-fp32-')) fs.rmSync(path.join(root, old), { recursive: true, force: true });
  const t = Date.now();
  log('converting to fp32 …');
  let last = 0;
  await convertCheckpoint(ckpt, pkg, {
    dtype: 'fp32',
    onProgress: (p) => {
      const pct = Math.floor((100 * p.done) / Math.max(1, p.total));
      if (pct >= last + 10) {
        last = pct;
        log(`  convert ${p.stage} ${pct}%`);
      }
    },
  });
  fs.writeFileSync(path.join(pkg, 'READY'), new Date().toISOString());
  log(`  converted in ${((Date.now() - t) / 1000).toFixed(0)} s`);
  return pkg;
}

// ------------------------------------------------------------------ MatMul rate

/** GFLOP/s of one fp32 MatMul [M,K]×[K,N] (weight as initializer, as in the model graphs), best of `reps`. */
async function matmulRate(threads: number, m: number, k: number, n: number, reps = 5): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'longsight-matmul-'));
  try {
    const g = new GraphBuilder('matmul_probe', path.join(dir, 'mm.onnx'));
    g.input('x', 'float32', ['M', k]);
    const w = new Float32Array(k * n).map((_, i) => Math.sin(i) * 0.01);
    const wName = g.initializer('w', 'float32', [k, n], new Uint8Array(w.buffer));
    g.output(g.op('MatMul', ['x', wName]), 'y', 'float32', ['M', n]);
    const file = g.save([{ domain: '', version: 17 }]);
    const s = await ort.InferenceSession.create(file, { executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
    const x = new ort.Tensor('float32', new Float32Array(m * k).fill(0.5), [m, k]);
    await s.run({ x });
    let best = Infinity;
    for (let r = 0; r < reps; r++) {
      const t = performance.now();
      await s.run({ x });
      best = Math.min(best, performance.now() - t);
    }
    await s.release();
    return (2 * m * k * n) / (best / 1000) / 1e9;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------ FLOP counts (multiply-add = 2 FLOPs)

function visionFlopsPerFrame(m: LoadedModel['manifest']): number {
  const v = m.vision;
  const n = v.numPatches;
  const d = v.hiddenSize;
  const inter = 4304; // SigLIP-so400m MLP width (the 0.5B preset's vision intermediate size)
  const conv = 2 * n * d * 3 * v.patchSize * v.patchSize;
  const perLayer = 2 * n * 4 * d * d + 2 * 2 * n * n * d + 2 * 2 * n * d * inter;
  const projector = 2 * n * (d * v.projectedSize + v.projectedSize * v.projectedSize);
  return conv + v.layersUsed * perLayer + projector;
}

/** Decoder FLOPs to process `count` new tokens on top of `past` cached ones (logits for the last only). */
function decoderFlops(m: LoadedModel['manifest'], past: number, count: number): number {
  const t = m.text;
  const kv = t.numKvHeads * t.headDim;
  const linear = 2 * (t.hiddenSize * (t.hiddenSize + 2 * kv) + t.hiddenSize * t.hiddenSize + 3 * t.hiddenSize * t.intermediateSize);
  // Causal attention: token i attends to past + i + 1 positions; QK^T and AV each 2·ctx·hidden.
  const ctxSum = count * past + (count * (count + 1)) / 2;
  const attention = 2 * 2 * t.hiddenSize * ctxSum;
  return t.numLayers * (count * linear + attention) + 2 * t.hiddenSize * t.vocabSize;
}

// ------------------------------------------------------------------ child: peak RSS of a long prefill

async function rssChild(pkg: string, tokens: number, chunk: number, threads: number): Promise<void> {
  const model = await loadModel(pkg, { executionProvider: 'cpu', threads });
  const afterLoad = process.memoryUsage().rss;
  const h = model.manifest.text.hiddenSize;
  const rotary = jobRotary(model.decoder, {
    headDim: model.manifest.text.headDim,
    ropeTheta: model.manifest.text.ropeTheta,
    languageWindow: model.manifest.text.maxPositionEmbeddings,
    rope: DEFAULT_SETTINGS.rope,
    visualTokens: tokens,
    positions: tokens + 1,
  });
  const embeds = Float32Array.from({ length: tokens * h }, (_, i) => Math.sin(i * 0.001) * 0.5);
  const t = performance.now();
  log(`  [rss ${tokens}] prefill of ${tokens} tokens in chunks of ${chunk} (one run)`);
  await model.decoder.prefill(embeds, tokens, model.decoder.emptyCache(), rotary.tensors, chunk);
  const seconds = (performance.now() - t) / 1000;
  process.stdout.write(JSON.stringify({ tokens, chunk, seconds, afterLoadBytes: afterLoad, peakRssBytes: process.resourceUsage().maxRSS * 1024 }) + '\n');
  await model.close();
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  const threads = Number(arg('threads', String(os.cpus().length)));
  if (process.argv[2] === '--rss-child') return rssChild(process.argv[3], Number(process.argv[4]), Number(process.argv[5]), threads);

  const promptTokens = Number(arg('prompt', '1024'));
  const decodeTokens = Number(arg('decode', '32'));
  const frames = Number(arg('frames', '2'));
  const rssPoints = arg('rss', '4096,16384').split(',').map(Number);
  const chunk = DEFAULT_SETTINGS.prefillChunk;
  const out: string[] = [];
  const say = (line: string) => {
    out.push(line);
    console.log(line);
  };

  const pkg = await ensureBenchPackage();
  say(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model}, ${(os.totalmem() / GB).toFixed(0)} GB RAM; onnxruntime-node ${require('onnxruntime-node/package.json').version}, CPU EP, ${threads} intra-op threads; load average at start ${os.loadavg()[0].toFixed(1)}`);

  log('measuring the MatMul rate …');
  const mmDecoder = await matmulRate(threads, 512, 896, 4864);
  const mmVision = await matmulRate(threads, 729, 1152, 4304);
  const rate = Math.max(mmDecoder, mmVision);
  say(`MatMul rate (fp32, best of 5): [512×896]·[896×4864] ${mmDecoder.toFixed(1)} GFLOP/s, [729×1152]·[1152×4304] ${mmVision.toFixed(1)} GFLOP/s → reference rate ${rate.toFixed(1)} GFLOP/s`);
  const frac = (flops: number, seconds: number) => `${((flops / seconds / 1e9 / rate) * 100).toFixed(0)}% of MatMul rate (${(flops / seconds / 1e9).toFixed(1)} GFLOP/s)`;

  log('loading the model …');
  const model = await loadModel(pkg, { executionProvider: 'cpu', threads });
  const m = model.manifest;

  // Vision: a warm-up frame, then `frames` frames in one batch.
  {
    const s = m.vision.imageSize;
    const pixels = Float32Array.from({ length: frames * 3 * s * s }, (_, i) => Math.sin(i * 0.01));
    log('vision warm-up …');
    await model.vision.encode(pixels.subarray(0, 3 * s * s), 1, 1);
    log(`vision: ${frames} frames …`);
    const t = performance.now();
    await model.vision.encode(pixels, frames, frames);
    const sec = (performance.now() - t) / 1000;
    say(`vision (SigLIP-so400m 26 layers + projector, batch ${frames}): ${(frames / sec).toFixed(2)} frames/s (${(sec / frames).toFixed(2)} s/frame), ${frac(visionFlopsPerFrame(m) * frames, sec)}`);
  }

  // Prefill and decode.
  {
    const h = m.text.hiddenSize;
    const rotary = jobRotary(model.decoder, { headDim: m.text.headDim, ropeTheta: m.text.ropeTheta, languageWindow: m.text.maxPositionEmbeddings, rope: DEFAULT_SETTINGS.rope, visualTokens: promptTokens, positions: promptTokens + decodeTokens + 1 });
    const embeds = Float32Array.from({ length: promptTokens * h }, (_, i) => Math.sin(i * 0.001) * 0.5);
    log('decoder warm-up …');
    await model.decoder.prefill(embeds.subarray(0, 16 * h), 16, model.decoder.emptyCache(), rotary.tensors, 16);
    log(`prefill ${promptTokens} tokens (chunk 512) …`);
    let t = performance.now();
    let state = await model.decoder.prefill(embeds, promptTokens, model.decoder.emptyCache(), rotary.tensors, 512);
    let sec = (performance.now() - t) / 1000;
    say(`prefill ${promptTokens} tokens (chunk 512): ${(promptTokens / sec).toFixed(1)} tokens/s, ${frac(decoderFlops(m, 0, promptTokens), sec)}`);
    log(`decode ${decodeTokens} tokens …`);
    t = performance.now();
    let flops = 0;
    for (let i = 0; i < decodeTokens; i++) {
      flops += decoderFlops(m, state.cache.length, 1);
      state = await model.decoder.step(model.embeddings.gather([1000 + i]), 1, state.cache, rotary.tensors);
    }
    sec = (performance.now() - t) / 1000;
    const weightBytes = 4 * (m.text.numLayers * (m.text.hiddenSize * (2 * m.text.hiddenSize + 2 * m.text.numKvHeads * m.text.headDim) + 3 * m.text.hiddenSize * m.text.intermediateSize) + m.text.hiddenSize * m.text.vocabSize);
    say(`decode ${decodeTokens} tokens after ${promptTokens}: ${(decodeTokens / sec).toFixed(2)} tokens/s (${((sec / decodeTokens) * 1000).toFixed(0)} ms/token), ${frac(flops, sec)}; memory-bound: ${(weightBytes / GB).toFixed(2)} GB of fp32 weights read per token = ${((weightBytes * decodeTokens) / sec / GB).toFixed(1)} GB/s`);
  }
  await model.close();

  // Multi-question saving: one job with 8 questions (shared prefix) vs 8 one-question jobs.
  {
    const texts = [
      'What happens in this video?', 'How many people appear?', 'What colours dominate the scene?', 'Is it day or night?',
      'Describe the setting.', 'What is the main object?', 'Does the camera move?', 'Summarise the video in one sentence.',
    ];
    const questions = texts.map((text) => ({ id: questionId(text), text }));
    const jpegs = await Promise.all(
      Array.from({ length: frames }, (_, f) => sharp({ create: { width: 384, height: 384, channels: 3, background: { r: 40 * f, g: 120, b: 200 } } }).jpeg().toBuffer()),
    );
    const settings = InferenceSettingsSchema.parse({ ...DEFAULT_SETTINGS, pooling: STOCK_POOLING, maxNewTokens: 8 });
    const engine = await createOnnxEngine({ modelDir: pkg, threads, visionBatch: frames });
    log(`multi-question: 8 questions in one job, ${frames} frames …`);
    let t = performance.now();
    const shared = await engine.answer({ frames: jpegs, questions, settings });
    const sharedSec = (performance.now() - t) / 1000;
    log('multi-question: 8 separate one-question jobs …');
    t = performance.now();
    const separate = [];
    for (const q of questions) separate.push(await engine.answer({ frames: jpegs, questions: [q], settings }));
    const separateSec = (performance.now() - t) / 1000;
    await engine.close();
    const same = separate.every((r, i) => r.answers[0].text === shared.answers[i].text);
    say(
      `multi-question (${frames} frames = ${shared.visualTokens} visual tokens, 8 questions, ≤ 8 new tokens each): one job ${sharedSec.toFixed(1)} s vs 8 separate jobs ${separateSec.toFixed(1)} s → ` +
        `${(separateSec / sharedSec).toFixed(2)}× faster, ${((1 - sharedSec / separateSec) * 100).toFixed(0)}% saved; answers identical: ${same}`,
    );
  }

  // Peak RSS of long prompts, each in a fresh process.
  if (!process.argv.includes('--skip-rss')) {
    for (const tokens of rssPoints) {
      log(`peak RSS: ${tokens}-token prefill (chunk ${chunk}) in a child process …`);
      const res = execFileSync(process.execPath, [...process.execArgv, __filename, '--rss-child', pkg, String(tokens), String(chunk), '--threads', String(threads)], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
        maxBuffer: 1 << 20,
      });
      const r = JSON.parse(res.trim().split('\n').pop()!) as { seconds: number; afterLoadBytes: number; peakRssBytes: number };
      const kv = 2 * m.text.numLayers * m.text.numKvHeads * m.text.headDim * tokens * 4;
      say(
        `peak RSS, ${tokens}-token prompt, chunked prefill (chunk ${chunk}): ${(r.peakRssBytes / GB).toFixed(2)} GB ` +
          `(after loading the model ${(r.afterLoadBytes / GB).toFixed(2)} GB; fp32 KV cache ${(kv / MB).toFixed(0)} MB; prefill ${r.seconds.toFixed(0)} s = ${(tokens / r.seconds).toFixed(0)} tokens/s)`,
      );
    }
  }
  console.log('\n--- summary ---\n' + out.join('\n'));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
