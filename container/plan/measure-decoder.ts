/**
 * Child-process entry that measures what the decoder side of one job costs on the CPU EP: it
 * loads only the decoder graph, builds the visual sequence from random pooled frame tokens (as
 * many per frame as the job's schedule gives, placed by the runtime's own builder; the vision tower
 * is skipped to keep CPU time sane), splices it into a prompt of random text ids exactly as the
 * engine does, builds the job's RoPE tables, prefills in chunks (one run, as the engine's shared
 * prefix) and generates a few tokens in the graph's loop on that cache (as the engine's question run). It prints one JSON line: RSS before loading (baseline), after loading, the kernel's
 * peak (VmHWM) and the wall time of each phase. Separate processes keep each peak clean.
 *
 * Run: node --import tsx container/plan/measure-decoder.ts '<MeasureRequest JSON>'
 */
import * as fs from 'node:fs';
import type { PoolingSchedule, RopeExtension } from '../../lib/contracts';

export interface MeasureRequest {
  packageDir: string;
  frames: number;
  pooling: PoolingSchedule;
  rope: RopeExtension;
  chunk: number;
  questionTokens: number;
  /** Decode steps after the prefill (the RoPE tables cover them). */
  newTokens: number;
  threads: number;
  seed?: number;
  /**
   * Collect garbage after every decoder step (the child runs with --expose-gc). The runtime drops
   * each step's previous cache, but V8 frees those buffers only when it next collects, so without
   * this the peak includes a varying number of dead caches; with it the peak is the live memory.
   */
  forceGc?: boolean;
  /** false: create the session with onnxruntime's CPU memory arena disabled (an experiment; the runtime keeps it on). */
  arena?: boolean;
}

export interface MeasureResult {
  visualTokens: number;
  promptTokens: number;
  sequenceTokens: number;
  ropeScale: number;
  baselineRss: number;
  afterLoadRss: number;
  peakRss: number;
  /** peakRss − baselineRss: what the job added to the process (weights included). */
  peakGrowth: number;
  /** VmHWM right after loading the decoder (the load transient). */
  loadPeakRss: number;
  /** Whether the kernel's peak could be reset after loading (else peakRss may be the load transient). */
  peakReset: boolean;
  ms: { load: number; visual: number; prefill: number; decode: number };
}

/** VmRSS / VmHWM of this process in bytes (Linux). */
export function procMemory(): { rss: number; hwm: number } {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const kb = (key: string) => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
    if (!m) throw new Error(`/proc/self/status has no ${key}`);
    return Number(m[1]) * 1024;
  };
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** Resets VmHWM to the current RSS (Linux ≥ 4.0: `echo 5 > /proc/self/clear_refs`). */
export function resetPeakRss(): boolean {
  try {
    fs.writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

async function main(req: MeasureRequest): Promise<MeasureResult> {
  // Everything the job needs is imported first, so the baseline holds node, onnxruntime and our code.
  const { loadModelPackage } = await import('../model/package-manifest');
  const { createSession, sessionOptions } = await import('../runtime/session');
  const ort = await import('onnxruntime-node');
  const { DecoderRunner } = await import('../runtime/decoder');
  const { EmbeddingTable, readVector } = await import('../runtime/embeddings');
  const { VisualSequenceBuilder } = await import('../runtime/visual-sequence');
  const { assembleEmbeddings } = await import('../runtime/onnx-engine');
  const { jobRotary } = await import('../runtime/rotary');
  const { frameTokenCounts, visualTokenCount } = await import('../model/progressive-pool');
  const { PROMPT_TEMPLATE_TOKENS } = await import('./memory');

  const baselineRss = procMemory().rss;
  let t = performance.now();
  const pkg = loadModelPackage(req.packageDir);
  const m = pkg.manifest;
  const sessionConfig = { executionProvider: 'cpu' as const, threads: req.threads };
  const session =
    req.arena === false
      ? await ort.InferenceSession.create(pkg.paths.decoder, { ...sessionOptions(sessionConfig), enableCpuMemArena: false })
      : await createSession(pkg.paths.decoder, sessionConfig);
  const decoder = new DecoderRunner(session, { layers: m.text.numLayers, kvHeads: m.text.numKvHeads, headDim: m.text.headDim, hidden: m.text.hiddenSize, vocab: m.text.vocabSize });
  const dtype = m.dtype === 'fp16' ? 'float16' : 'float32';
  const embeddings = EmbeddingTable.open(pkg.paths.embedTokens, m.text.vocabSize, m.text.hiddenSize, dtype);
  const newline = readVector(pkg.paths.imageNewline, m.text.hiddenSize, dtype);
  const load = performance.now() - t;
  const afterLoadRss = procMemory().rss;
  // Loading peaks above its steady state (onnxruntime reads the weights, then pre-packs them for
  // its GEMM and frees the originals): record that peak, then reset the kernel's high-water mark so
  // the job's own peak is measured on its own.
  const loadPeakRss = procMemory().hwm;
  const reset = resetPeakRss();

  // Random pooled frame tokens, one frame at a time (a cheap LCG: Math.random would dominate).
  t = performance.now();
  const grid = m.vision.gridSize;
  const h = m.text.hiddenSize;
  let state = (req.seed ?? 1) >>> 0 || 1;
  const builder = new VisualSequenceBuilder(req.frames, grid, h, req.pooling);
  const counts = frameTokenCounts(req.frames, grid, req.pooling);
  for (let f = 0; f < req.frames; f++) {
    const frame = new Float32Array(counts[f] * h);
    for (let i = 0; i < frame.length; i++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      frame[i] = state / 2 ** 31 - 1;
    }
    builder.setFrame(f, frame);
  }
  const visual = builder.finish(newline);
  const visualTokens = visualTokenCount(req.frames, grid, req.pooling);
  // Prompt: `<|im_start|>user\n` <video> `\n{question}<|im_end|>\n<|im_start|>assistant\n` as random ids.
  const textTokens = PROMPT_TEMPLATE_TOKENS + req.questionTokens;
  const ids = Array.from({ length: textTokens + 1 }, (_, i) => (i * 7919 + 13) % 151000);
  const videoIndex = 3;
  ids[videoIndex] = m.tokens.video;
  const prompt = assembleEmbeddings(embeddings, ids, videoIndex, visual, visualTokens);
  const visualMs = performance.now() - t;

  const sequenceTokens = prompt.count + req.newTokens;
  const rotary = jobRotary(decoder, {
    headDim: m.text.headDim,
    ropeTheta: m.text.ropeTheta,
    languageWindow: m.text.maxPositionEmbeddings,
    rope: req.rope,
    visualTokens,
    positions: sequenceTokens,
  });

  t = performance.now();
  const collect = req.forceGc ? (globalThis as { gc?: () => void }).gc : undefined;
  if (req.forceGc && !collect) throw new Error('forceGc needs node --expose-gc');
  // The prompt minus its last token is the "shared prefix"; the last token + generation is the question run.
  const { cache } = await decoder.prefill(prompt.embeds.subarray(0, (prompt.count - 1) * h), prompt.count - 1, decoder.emptyCache(), rotary.tensors, req.chunk);
  collect?.();
  const prefill = performance.now() - t;
  t = performance.now();
  if (req.newTokens > 0) {
    await decoder.generate(prompt.embeds.subarray((prompt.count - 1) * h), 1, cache, rotary.tensors, { maxNewTokens: req.newTokens, stopIds: [], chunk: req.chunk, temperature: 0, seed: 0 });
  }
  collect?.();
  const decode = performance.now() - t;
  const peakRss = procMemory().hwm;
  await session.release();
  return {
    visualTokens,
    promptTokens: prompt.count,
    sequenceTokens,
    ropeScale: rotary.scale,
    baselineRss,
    afterLoadRss,
    peakRss,
    peakGrowth: peakRss - baselineRss,
    loadPeakRss,
    peakReset: reset,
    ms: { load: Math.round(load), visual: Math.round(visualMs), prefill: Math.round(prefill), decode: Math.round(decode) },
  };
}

if (require.main === module) {
  const arg = process.argv[2];
  if (!arg) {
    process.stderr.write('usage: measure-decoder.ts <MeasureRequest JSON>\n');
    process.exit(2);
  }
  main(JSON.parse(arg) as MeasureRequest).then(
    (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
    (err) => {
      process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
