/**
 * @jest-environment ./test/convert/support/onnx-environment.js
 */
/**
 * The whole engine path against the float64 reference: frames → SigLIP + projector → progressive
 * pooling (projector before pooling, bilinear align_corners=False) → one image_newline after all
 * frames → spliced at the `<video>` token of the chat prompt → Qwen2 with visual-window YaRN (s > 1).
 * The reference pools and lays out the tokens with its own code (container/reference/pooling.ts),
 * so a layout or pooling mistake in the runtime shows up as a logit mismatch.
 */
import sharp from 'sharp';
import { DEFAULT_SETTINGS, InferenceSettingsSchema, questionId } from '../../lib/contracts';
import { computeRopeFrequencies } from '../../container/model/yarn-rope';
import { mat, openReferenceModel, referenceEmbed, referenceImageFeatures, referenceLastLogits, referenceVideoTokens, ropeTablesFromInvFreq, type Mat, type ReferenceModel } from '../../container/reference';
import { createOnnxEngine, type OnnxEngine } from '../../container/runtime/onnx-engine';
import { framesToPixels } from '../../container/runtime/preprocess';
import { tokenizeQuestion } from '../../container/runtime/prompt';
import { maxRelativeError, tinyPackage } from './fixtures';

jest.setTimeout(540_000);

describe('engine logits vs the float64 reference over the whole video pipeline (tiny checkpoint)', () => {
  let engine: OnnxEngine;
  let ref: ReferenceModel;
  let firstLogits: Float32Array | undefined;

  beforeAll(async () => {
    const fx = await tinyPackage({ preset: 'tiny' });
    engine = await createOnnxEngine({
      modelDir: fx.packageDir,
      executionProvider: 'cpu',
      threads: 1,
      visionBatch: 2,
      onLogits: ({ step, logits }) => {
        if (step === 0) firstLogits = Float32Array.from(logits);
      },
    });
    ref = openReferenceModel(fx.checkpointDir);
  });
  afterAll(async () => {
    await engine?.close();
    ref?.close();
  });

  it('first-step logits match with K = 2, s_h = 2, s_l = 8 on 3 frames (the last group shorter than K) and YaRN s > 1', async () => {
    const frames = await Promise.all(
      [0, 1, 2].map((f) => {
        const side = 40;
        const rgb = Buffer.alloc(side * side * 3);
        for (let i = 0; i < rgb.length; i++) rgb[i] = (i * (7 + f) + 31 * f) % 256;
        return sharp(rgb, { raw: { width: side, height: side, channels: 3 } }).png().toBuffer();
      }),
    );
    const pooling = { groupSize: 2, strideHigh: 2, strideLow: 8 };
    const settings = InferenceSettingsSchema.parse({
      ...DEFAULT_SETTINGS,
      pooling,
      rope: { ...DEFAULT_SETTINGS.rope, mode: 'visual-yarn', visualContextWindow: 100 },
      maxNewTokens: 1,
      prefillChunk: 128,
      decodeLoop: 'host', // the logits hook sees every step only in the host loop
    });
    const text = 'What changes between the frames?';
    firstLogits = undefined;
    const result = await engine.answer({ frames, questions: [{ id: questionId(text), text }], settings });
    const L = 196 + 16 + 196 + 1; // frame 0: 14×14, frame 1: 4×4, frame 2 starts the second group: 14×14; one newline
    expect(result.visualTokens).toBe(L);
    expect(result.ropeScale).toBeCloseTo(L / 100, 12);

    // Reference: its own vision, pooling, layout, embeddings and decoder; shared only the pixels and the token ids.
    const m = engine.model.manifest;
    const s = m.vision.imageSize;
    const pixels = await framesToPixels(frames, engine.model.preprocess);
    const features: Mat[] = frames.map((_, f) => referenceImageFeatures(Float64Array.from(pixels.subarray(f * 3 * s * s, (f + 1) * 3 * s * s)), ref.config.vision, ref.weights));
    const grid = ref.config.vision.imageSize / ref.config.vision.patchSize | 0;
    const video = referenceVideoTokens(features, grid, pooling, ref.weights.imageNewline());
    expect(video.rows).toBe(L);
    const prompt = tokenizeQuestion(engine.model.tokenizer, text, m.tokens.video);
    const before = referenceEmbed(prompt.ids.slice(0, prompt.videoIndex), ref.weights);
    const after = referenceEmbed(prompt.ids.slice(prompt.videoIndex + 1), ref.weights);
    const seq = mat(before.rows + video.rows + after.rows, video.cols);
    seq.data.set(before.data, 0);
    seq.data.set(video.data, before.data.length);
    seq.data.set(after.data, before.data.length + video.data.length);
    expect(result.answers[0].promptTokens).toBe(seq.rows);
    const freqs = computeRopeFrequencies({ headDim: m.text.headDim, ropeTheta: ref.config.text.ropeTheta, rope: settings.rope, visualTokens: L, languageWindow: 32768 });
    expect(freqs.applied).toBe(true);
    const expected = referenceLastLogits(seq, ref.config.text, ref.weights, ropeTablesFromInvFreq(freqs.invFreq, seq.rows));
    expect(firstLogits).toBeDefined();
    const err = maxRelativeError(firstLogits!, expected);
    if (process.env.LONGSIGHT_SHOW_ERRORS) console.log(`pipeline logits: ${err.toExponential(2)}`);
    expect(err).toBeLessThanOrEqual(1e-5); // observed ~5e-7, as the per-graph checks in numerics.test.ts
  });
});
