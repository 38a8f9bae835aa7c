/**
 * @jest-environment ./test/convert/support/onnx-environment.js
 */
/**
 * The transfer ledger of real jobs on the tiny checkpoint (CPU EP; the same graphs run on CUDA,
 * where these bytes are PCIe copies): every kind against byte counts worked out by hand from the
 * shapes, the planner's replay (container/plan/transfers.ts) equal to what the engine measured, and
 * perGeneratedToken checked by running one job at two max_new_tokens with the stop ids suppressed.
 */
import sharp from 'sharp';
import { DEFAULT_SETTINGS, InferenceSettingsSchema, PAPER_POOLING, questionId, type InferenceSettings, type Question } from '../../lib/contracts';
import { planTransfers } from '../../container/plan/transfers';
import { createOnnxEngine, type OnnxEngine } from '../../container/runtime/onnx-engine';
import { sharedPrefixLength, tokenizeQuestion } from '../../container/runtime/prompt';
import type { TransferBytes } from '../../container/runtime/transfer-ledger';
import { tinyPackage } from './fixtures';

jest.setTimeout(120_000);

const q = (text: string): Question => ({ id: questionId(text), text });
const QUESTIONS = [q('What happens in this video?'), q('Which colours do you see, and where?')];

async function frames(n: number): Promise<Buffer[]> {
  return Promise.all(
    Array.from({ length: n }, (_, f) => {
      const rgb = Buffer.alloc(384 * 384 * 3, 0);
      for (let i = 0; i < rgb.length; i++) rgb[i] = (i * 7 + f * 31) % 251;
      return sharp(rgb, { raw: { width: 384, height: 384, channels: 3 } }).png().toBuffer();
    }),
  );
}

describe('transfer ledger (tiny checkpoint: hidden 64, 2 layers, 2 KV heads of 16, vocab 152,000, fp32)', () => {
  let engine: OnnxEngine;
  let video: Buffer[];
  const settings = (over: Partial<InferenceSettings> = {}) => InferenceSettingsSchema.parse({ ...DEFAULT_SETTINGS, pooling: PAPER_POOLING, maxNewTokens: 6, prefillChunk: 64, ...over });

  beforeAll(async () => {
    const fx = await tinyPackage({ preset: 'tiny' });
    // Stop ids suppressed: every answer generates exactly max_new_tokens.
    engine = await createOnnxEngine({ modelDir: fx.packageDir, threads: 1, visionBatch: 2, stopIds: [] });
    video = await frames(3);
  });
  afterAll(() => engine?.close());

  /** Prompt sizes as the engine sees them: the shared prefix and each question's rest, in tokens. */
  function promptShape(questions: Question[], visualTokens: number) {
    const m = engine.model;
    const prompts = questions.map((x) => tokenizeQuestion(m.tokenizer, x.text, m.manifest.tokens.video));
    const prefixIds = sharedPrefixLength(m.tokenizer, prompts);
    const rests = prompts.map((p) => p.ids.length - prefixIds);
    const longest = Math.max(...prompts.map((p) => p.ids.length - 1 + visualTokens));
    return { prefixTokens: prefixIds - 1 + visualTokens, rests, longest };
  }

  function planned(questions: Question[], s: InferenceSettings, generated: number[]): TransferBytes {
    const m = engine.model.manifest;
    const visualTokens = 196 + 2 * 16 + 1;
    const shape = promptShape(questions, visualTokens);
    return planTransfers({
      text: m.text,
      vision: m.vision,
      dtype: m.dtype,
      frames: 3,
      pooling: s.pooling,
      visionBatch: 2,
      prefixTokens: shape.prefixTokens,
      questionTokens: shape.rests,
      ropePositions: shape.longest + s.maxNewTokens,
      generatedTokens: generated,
      stopIds: 0,
      decodeLoop: s.decodeLoop,
    });
  }

  it('counts every kind as worked out by hand (two questions, graph loop)', async () => {
    const r = await engine.answer({ frames: video, questions: QUESTIONS, settings: settings() });
    // Paper pooling on 3 frames: frame 0 at 14×14, frames 1–2 at 4×4; 196 + 32 + 1 = 229 visual tokens.
    expect(r.visualTokens).toBe(229);
    const { prefixTokens, rests, longest } = promptShape(QUESTIONS, 229);
    const k = r.transferBytes.byKind;
    expect(k.pixels).toBe(3 * 3 * 384 * 384 * 4); // 3 frames of float32 pixels, once
    expect(k.visionOut).toBe((196 + 2 * 16) * 64 * 4); // pooled tokens only, float32
    const kvBytes = 2 * 2 * 2 * 16 * 4; // (key + value) · layers · KV heads · head dim · 4 bytes, per token
    expect(k.kvOut).toBe(prefixTokens * kvBytes); // the shared prefix, out once
    expect(k.kvIn).toBe(2 * prefixTokens * kvBytes); // in once per question
    expect(k.embeddings).toBe((prefixTokens + rests[0] + rests[1]) * 64 * 4);
    const rows = longest + 6;
    expect(k.rotary).toBe(3 * 2 * rows * 8 * 4); // 3 decoder runs · (cos + sin) · [rows, 8] float32
    expect(k.tokenIds).toBe(2 * 6 * 8);
    expect(k.logprobs).toBe(2 * 6 * 4);
    expect(k.logits).toBe(0); // no logits leave the graph loop
    expect(k.control).toBe((14 * 27 + 4 * 27) * 4 + 3 * (8 + 8 + 0 + 4 + 8)); // pool weights + the decoder's control scalars
    expect(r.transferBytes.total).toBe(Object.values(k).reduce((a, b) => a + b, 0));
    expect(r.transferBytes.perGeneratedToken).toBe(12); // an int64 id and a float32 log-prob
    expect(r.transferBytes).toEqual(planned(QUESTIONS, settings(), [6, 6]));
  });

  it('one question: one decoder run, no KV cache crosses either way', async () => {
    const r = await engine.answer({ frames: video, questions: QUESTIONS.slice(0, 1), settings: settings() });
    expect(r.transferBytes.byKind.kvIn).toBe(0);
    expect(r.transferBytes.byKind.kvOut).toBe(0);
    expect(r.transferBytes).toEqual(planned(QUESTIONS.slice(0, 1), settings(), [6]));
  });

  it('perGeneratedToken is the marginal cost: one job at two max_new_tokens, graph loop and host loop', async () => {
    for (const decodeLoop of ['graph', 'host'] as const) {
      const at = (n: number) => engine.answer({ frames: video, questions: QUESTIONS, settings: settings({ maxNewTokens: n, decodeLoop }) });
      const a = await at(4);
      const b = await at(10);
      expect(b.answers.map((x) => x.generatedTokens)).toEqual([10, 10]);
      // The rotary tables are sized by the budget (prompt + max_new_tokens), not by tokens generated: taken out.
      const marginal = (b.transferBytes.total - b.transferBytes.byKind.rotary - (a.transferBytes.total - a.transferBytes.byKind.rotary)) / (2 * 6);
      if (decodeLoop === 'graph') {
        expect(marginal).toBe(12);
        expect(b.transferBytes.perGeneratedToken).toBe(12);
      } else {
        // Every host step feeds the whole cache and fetches it and the logits back: ~0.6 MB a token here.
        // perGeneratedToken averages the steps over the answer's tokens (the first token comes from the
        // prefill run, and each step also re-feeds the rotary tables), so it sits near, not on, the marginal.
        expect(marginal).toBeGreaterThan(152000 * 4);
        expect(Math.abs(b.transferBytes.perGeneratedToken / marginal - 1)).toBeLessThan(0.15);
      }
      expect(b.transferBytes).toEqual(planned(QUESTIONS, settings({ maxNewTokens: 10, decodeLoop }), [10, 10]));
    }
  });
});
