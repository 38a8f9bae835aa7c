/**
 * @jest-environment ./test/convert/support/onnx-environment.js
 */
/**
 * End to end through OnnxEngine on the tiny converted checkpoint: JPEG frames generated with sharp
 * + questions → answers. Checks the recorded job facts (visual tokens, RoPE scale/mode, pooling),
 * that the shared-prefix multi-question path gives the same tokens as separate full runs (one
 * question per job, and a hand-assembled full-sequence one-shot prefill, every step's logits through
 * the host loop), that the in-graph loop answers exactly as the host loop (on `wide`, whose greedy
 * tokens vary), streaming, seeded sampling, the sequence budget, abort, and the CUDA errors.
 */
import sharp from 'sharp';
import { DEFAULT_SETTINGS, InferenceSettingsSchema, PAPER_POOLING, questionId, STOCK_POOLING, type InferenceSettings, type Question } from '../../lib/contracts';
import { SequenceBudgetError } from '../../container/runtime/engine';
import { assembleEmbeddings, createOnnxEngine, type OnnxEngine } from '../../container/runtime/onnx-engine';
import { framesToPixels } from '../../container/runtime/preprocess';
import { tokenizeQuestion } from '../../container/runtime/prompt';
import { jobRotary } from '../../container/runtime/rotary';
import { argmax } from '../../container/runtime/sampler';
import { generate } from '../../container/runtime/generate';
import { VisualSequenceBuilder } from '../../container/runtime/visual-sequence';
import { maxRelativeError, tinyPackage } from './fixtures';

jest.setTimeout(360_000);

async function makeFrames(n: number, width = 384, height = 384): Promise<Buffer[]> {
  return Promise.all(
    Array.from({ length: n }, (_, f) => {
      const rgb = Buffer.alloc(width * height * 3);
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          const o = (y * width + x) * 3;
          rgb[o] = (x + 40 * f) % 256;
          rgb[o + 1] = (y * 2 + 17 * f) % 256;
          rgb[o + 2] = ((x ^ y) + 90 * f) % 256;
        }
      }
      return sharp(rgb, { raw: { width, height, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
    }),
  );
}

const q = (text: string): Question => ({ id: questionId(text), text });
const QUESTIONS = [q('What happens in this video?'), q('How many people are there?'), q('Describe the colours.')];

function settings(over: Partial<InferenceSettings> = {}): InferenceSettings {
  return InferenceSettingsSchema.parse({ ...DEFAULT_SETTINGS, pooling: STOCK_POOLING, maxNewTokens: 6, prefillChunk: 64, ...over });
}
/** The host loop: one run per token, so the diagnostics hook sees every step's logits. */
const host = (over: Partial<InferenceSettings> = {}) => settings({ decodeLoop: 'host', ...over });

/** Per question, the logits of every generation step (copied), from the engine's diagnostics hook. */
let logitSink: Map<string, Float32Array[]> | undefined;
function captureLogits(): Map<string, Float32Array[]> {
  logitSink = new Map();
  return logitSink;
}

describe('OnnxEngine end to end (tiny checkpoint, CPU EP)', () => {
  /** With the logits hook: host-loop jobs only. */
  let engine: OnnxEngine;
  /** Without it: the default, in-graph loop. */
  let graphEngine: OnnxEngine;
  let frames: Buffer[];

  beforeAll(async () => {
    const fx = await tinyPackage({ preset: 'tiny' });
    engine = await createOnnxEngine({
      modelDir: fx.packageDir,
      executionProvider: 'cpu',
      threads: 1,
      visionBatch: 2,
      onLogits: ({ questionId: id, logits }) => logitSink?.set(id, [...(logitSink.get(id) ?? []), Float32Array.from(logits)]),
    });
    graphEngine = await createOnnxEngine({ modelDir: fx.packageDir, executionProvider: 'cpu', threads: 1, visionBatch: 2 });
    frames = await makeFrames(3);
  });
  afterAll(async () => {
    await engine?.close();
    await graphEngine?.close();
  });

  it('answers every question and records visual tokens, RoPE scale/mode, pooling and timings (host loop: streams every token)', async () => {
    const streamed = new Map<string, string[]>();
    const r = await engine.answer({
      frames,
      questions: QUESTIONS,
      settings: host({ rope: { ...DEFAULT_SETTINGS.rope, visualContextWindow: 256 } }),
      onToken: (id, text) => streamed.set(id, [...(streamed.get(id) ?? []), text]),
    });
    expect(r.answers.map((a) => a.questionId)).toEqual(QUESTIONS.map((x) => x.id));
    expect(r.framesUsed).toBe(3);
    expect(r.visualTokens).toBe(3 * 14 * 14 + 1); // stock: 14x14 per frame + one image_newline
    expect(r.ropeMode).toBe('visual-yarn');
    expect(r.ropeScale).toBeCloseTo(589 / 256, 12);
    expect(r.pooling).toEqual(STOCK_POOLING);
    for (const a of r.answers) {
      expect(a.generatedTokens).toBeGreaterThan(0);
      expect(a.generatedTokens).toBeLessThanOrEqual(6);
      expect(a.promptTokens).toBeGreaterThan(r.visualTokens);
      const chunks = streamed.get(a.questionId)!;
      expect(chunks.length).toBe(a.generatedTokens);
      expect(chunks[chunks.length - 1]).toBe(a.text);
    }
    expect(r.timings.visionMs).toBeGreaterThan(0);
    expect(r.timings.prefillMs).toBeGreaterThan(0);
  });

  it('in the graph loop (the default) answers the same, reports each answer once, and keeps its logits inside', async () => {
    const s = { rope: { ...DEFAULT_SETTINGS.rope, visualContextWindow: 256 } };
    const viaHost = await engine.answer({ frames, questions: QUESTIONS, settings: host(s) });
    const streamed = new Map<string, string[]>();
    const progress: string[] = [];
    const r = await graphEngine.answer({
      frames,
      questions: QUESTIONS,
      settings: settings(s),
      onToken: (id, text) => streamed.set(id, [...(streamed.get(id) ?? []), text]),
      onProgress: (e) => progress.push(`${e.stage} ${e.done}/${e.total}`),
    });
    expect(r.answers.map((a) => a.text)).toEqual(viaHost.answers.map((a) => a.text));
    for (const a of r.answers) expect(streamed.get(a.questionId)).toEqual([a.text]);
    expect(progress).toEqual(['vision 2/3', 'vision 3/3', 'prefill 1/1', 'decode 1/3', 'decode 2/3', 'decode 3/3']);
    const seen = captureLogits();
    await engine.answer({ frames, questions: QUESTIONS, settings: settings() });
    expect(seen.size).toBe(0); // the hook sees host-loop steps only
    logitSink = undefined;
  });

  it('shared-prefix multi-question answers equal separate runs and a full one-shot prefill (tokens and every step\'s logits)', async () => {
    // A random tiny model tends to repeat one token whatever the input, so token equality alone
    // would prove little: every step's logits are compared too.
    const s = host({ maxNewTokens: 4, prefillChunk: 100 });
    const togetherLogits = captureLogits();
    const together = await engine.answer({ frames, questions: QUESTIONS, settings: s });
    for (let i = 0; i < QUESTIONS.length; i++) {
      const aloneLogits = captureLogits();
      const alone = await engine.answer({ frames, questions: [QUESTIONS[i]], settings: s });
      expect(alone.answers[0].text).toBe(together.answers[i].text);
      expect(alone.answers[0].generatedTokens).toBe(together.answers[i].generatedTokens);
      const a = aloneLogits.get(QUESTIONS[i].id)!;
      const t = togetherLogits.get(QUESTIONS[i].id)!;
      expect(a.length).toBe(t.length);
      a.forEach((l, step) => expect(maxRelativeError(t[step], l)).toBeLessThan(1e-5));
    }
    // Different questions must give different logits, or the comparison above would be vacuous.
    expect(maxRelativeError(togetherLogits.get(QUESTIONS[0].id)![0], togetherLogits.get(QUESTIONS[1].id)![0])).toBeGreaterThan(1e-3);
    logitSink = undefined;

    // Independent path: the whole prompt (video spliced in) prefilled in one shot, no prefix reuse.
    const m = engine.model;
    const pixels = await framesToPixels(frames, m.preprocess);
    const pooled = await m.vision.encode(pixels, frames.length, 14);
    const b = new VisualSequenceBuilder(frames.length, m.manifest.vision.gridSize, m.manifest.text.hiddenSize, STOCK_POOLING);
    frames.forEach((_, f) => b.setFrame(f, pooled, f * 196 * m.manifest.text.hiddenSize));
    const visual = b.finish(m.imageNewline);
    for (let i = 0; i < QUESTIONS.length; i++) {
      const p = tokenizeQuestion(m.tokenizer, QUESTIONS[i].text, m.manifest.tokens.video);
      const full = assembleEmbeddings(m.embeddings, p.ids, p.videoIndex, visual, b.tokenCount);
      const rotary = jobRotary(m.decoder, { headDim: m.manifest.text.headDim, ropeTheta: m.manifest.text.ropeTheta, languageWindow: 32768, rope: s.rope, visualTokens: b.tokenCount, positions: full.count + 4 });
      const start = await m.decoder.prefill(full.embeds, full.count, m.decoder.emptyCache(), rotary.tensors, full.count);
      const steps: Float32Array[] = [];
      const g = await generate(m.decoder, m.embeddings, start, rotary.tensors, {
        maxNewTokens: 4,
        stopIds: new Set(m.manifest.tokens.eos),
        sampler: argmax,
        onLogits: (l) => steps.push(Float32Array.from(l)),
      });
      expect(m.tokenizer.decode(g.ids)).toBe(together.answers[i].text);
      expect(together.answers[i].promptTokens).toBe(full.count);
      const t = togetherLogits.get(QUESTIONS[i].id)!;
      steps.forEach((l, step) => expect(maxRelativeError(t[step], l)).toBeLessThan(1e-5));
    }
  });

  it('gives the same logits for any vision batch size, and handles frames that need resizing', async () => {
    const fx = await tinyPackage({ preset: 'tiny' });
    const batched = captureLogits();
    const a = await engine.answer({ frames, questions: QUESTIONS.slice(0, 1), settings: host({ maxNewTokens: 1 }) });
    logitSink = undefined;
    const steps: Float32Array[] = [];
    const one = await createOnnxEngine({ modelDir: fx.packageDir, visionBatch: 1, threads: 1, onLogits: ({ logits }) => steps.push(Float32Array.from(logits)) });
    try {
      const b = await one.answer({ frames, questions: QUESTIONS.slice(0, 1), settings: host({ maxNewTokens: 1 }) });
      expect(b.answers[0].text).toBe(a.answers[0].text);
      expect(maxRelativeError(steps[0], batched.get(QUESTIONS[0].id)![0])).toBeLessThan(1e-5);
    } finally {
      await one.close();
    }
    const wide = await makeFrames(2, 640, 360);
    const r = await graphEngine.answer({ frames: wide, questions: QUESTIONS.slice(0, 1), settings: settings() });
    expect(r.visualTokens).toBe(2 * 196 + 1);
  });

  it('applies the paper pooling schedule and extension to the token count and s', async () => {
    const many = await makeFrames(5);
    const r = await graphEngine.answer({ frames: many, questions: QUESTIONS.slice(0, 1), settings: settings({ pooling: PAPER_POOLING, rope: { ...DEFAULT_SETTINGS.rope, visualContextWindow: 100 } }) });
    expect(r.visualTokens).toBe(196 + 3 * 16 + 196 + 1); // groups [0..3], [4]: 14x14, 4x4 x3, 14x14, newline
    expect(r.ropeScale).toBeCloseTo(r.visualTokens / 100, 12);
    const off = await graphEngine.answer({ frames: many, questions: QUESTIONS.slice(0, 1), settings: settings({ pooling: PAPER_POOLING, rope: { ...DEFAULT_SETTINGS.rope, mode: 'off' } }) });
    expect(off.ropeScale).toBe(1);
    expect(off.ropeMode).toBe('off');
  });

  it('samples reproducibly with a seed: top-p in the host loop, temperature in the graph loop', async () => {
    const s = host({ sampling: { temperature: 1.2, topP: 0.9, seed: 42 }, maxNewTokens: 8 });
    const a = await engine.answer({ frames: frames.slice(0, 1), questions: QUESTIONS.slice(0, 2), settings: s });
    const b = await engine.answer({ frames: frames.slice(0, 1), questions: QUESTIONS.slice(0, 2), settings: s });
    expect(b.answers.map((x) => x.text)).toEqual(a.answers.map((x) => x.text));
    const g = settings({ sampling: { temperature: 1.2, topP: 1, seed: 42 }, maxNewTokens: 8 });
    const c = await graphEngine.answer({ frames: frames.slice(0, 1), questions: QUESTIONS.slice(0, 2), settings: g });
    const d = await graphEngine.answer({ frames: frames.slice(0, 1), questions: QUESTIONS.slice(0, 2), settings: g });
    expect(d.answers.map((x) => x.text)).toEqual(c.answers.map((x) => x.text));
    expect(() => settings({ sampling: { temperature: 1, topP: 0.9, seed: 1 } })).toThrow(/top-p sampling .* runs in the host loop only/);
  });

  it('throws SequenceBudgetError before any work when the sequence exceeds maxSequenceTokens', async () => {
    const err = await graphEngine.answer({ frames, questions: QUESTIONS, settings: settings({ maxSequenceTokens: 300 }) }).catch((e) => e);
    expect(err).toBeInstanceOf(SequenceBudgetError);
    expect(err.budget).toBe(300);
    expect(err.sequenceTokens).toBeGreaterThan(3 * 196);
  });

  it('stops between steps when aborted and names undecodable frames', async () => {
    const ac = new AbortController();
    ac.abort(new Error('shutting down'));
    await expect(graphEngine.answer({ frames, questions: QUESTIONS, settings: settings(), signal: ac.signal })).rejects.toThrow(/shutting down/);
    await expect(graphEngine.answer({ frames: [frames[0], Buffer.from('garbage')], questions: QUESTIONS, settings: settings() })).rejects.toThrow(/frame 1/);
  });

  it('runs an fp16 package end to end, its logits within 1e-2 of the fp32 package', async () => {
    const fx16 = await tinyPackage({ preset: 'tiny', packageDtype: 'fp16' });
    const steps16: Float32Array[] = [];
    const e16 = await createOnnxEngine({ modelDir: fx16.packageDir, threads: 1, onLogits: ({ logits }) => steps16.push(Float32Array.from(logits)) });
    try {
      expect(e16.model.dtype).toBe('float16');
      const s = host({ maxNewTokens: 1 });
      const fp32 = captureLogits();
      await engine.answer({ frames: frames.slice(0, 2), questions: QUESTIONS.slice(0, 1), settings: s });
      logitSink = undefined;
      const r = await e16.answer({ frames: frames.slice(0, 2), questions: QUESTIONS.slice(0, 1), settings: s });
      expect(r.visualTokens).toBe(2 * 196 + 1);
      expect(maxRelativeError(steps16[0], fp32.get(QUESTIONS[0].id)![0])).toBeLessThan(1e-2);
    } finally {
      await e16.close();
    }
  });

  it('refuses an fp32 package on the CUDA EP (its GroupQueryAttention is fp16-only) and names a missing CUDA provider', async () => {
    const fx = await tinyPackage({ preset: 'tiny' });
    await expect(createOnnxEngine({ modelDir: fx.packageDir, executionProvider: 'cuda' })).rejects.toThrow(/fp32 package, and the CUDA execution provider needs fp16.*GroupQueryAttention.*--target cuda/s);
    const fx16 = await tinyPackage({ preset: 'tiny', packageDtype: 'fp16' });
    await expect(createOnnxEngine({ modelDir: fx16.packageDir, executionProvider: 'cuda' })).rejects.toThrow(/CUDA execution provider requested.*(libonnxruntime_providers_cuda|no CUDA support)/s);
  });
});

describe('the graph loop against the host loop, whole jobs on the wide checkpoint (greedy tokens vary)', () => {
  it('gives identical greedy answers for several questions sharing the video prefix, and for one question alone', async () => {
    // Seed 7: a checkpoint whose answers differ between these questions and whose tokens do not just repeat.
    const fx = await tinyPackage({ preset: 'wide', seed: 7 });
    const e = await createOnnxEngine({ modelDir: fx.packageDir, threads: 1, visionBatch: 4, stopIds: [] });
    try {
      const frames = await makeFrames(4);
      const s = settings({ pooling: PAPER_POOLING, maxNewTokens: 12, rope: { ...DEFAULT_SETTINGS.rope, visualContextWindow: 64 } });
      const graph = await e.answer({ frames, questions: QUESTIONS, settings: s });
      const viaHost = await e.answer({ frames, questions: QUESTIONS, settings: { ...s, decodeLoop: 'host' } });
      expect(graph.answers.map((a) => a.text)).toEqual(viaHost.answers.map((a) => a.text));
      for (const a of graph.answers) expect(a.generatedTokens).toBe(12); // stop ids suppressed
      expect(new Set(graph.answers.map((a) => a.text)).size).toBe(QUESTIONS.length); // different questions, different answers
      const alone = await e.answer({ frames, questions: [QUESTIONS[1]], settings: s });
      expect(alone.answers[0].text).toBe(graph.answers[1].text);
    } finally {
      await e.close();
    }
  });
});
