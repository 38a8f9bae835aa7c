/**
 * @jest-environment ./test/convert/support/onnx-environment.js
 */
/**
 * The converted graphs against the independent float64 reference (container/reference/), on
 * fresh random inputs each run: SigLIP + projector features, decoder last-position logits (with
 * stock and extended RoPE tables), and greedy continuations. Max relative error (max |Δ| / max |ref|)
 * ≤ 1e-5 in fp32 (observed ~1e-6; tight enough that a GELU-tanh/exact-GELU swap in the projector,
 * ~2e-4, fails) and ≤ 1e-2 in fp16; on the tiny checkpoint and a second, wider one.
 */
import { DEFAULT_SETTINGS, RopeExtensionSchema } from '../../lib/contracts';
import { computeRopeFrequencies, stockInverseFrequencies } from '../../container/model/yarn-rope';
import {
  mat,
  openReferenceModel,
  referenceEmbed,
  referenceGreedy,
  referenceImageFeatures,
  referenceLastLogits,
  ropeTablesFromInvFreq,
  type ReferenceModel,
} from '../../container/reference';
import { argmax } from '../../container/runtime/sampler';
import { generate } from '../../container/runtime/generate';
import { loadModel, type LoadedModel } from '../../container/runtime/loaded-model';
import { jobRotary } from '../../container/runtime/rotary';
import { maxRelativeError, randomSource, tinyPackage } from './fixtures';

jest.setTimeout(540_000);

const seed = (Date.now() ^ (process.pid << 8)) >>> 0;
const random = randomSource(seed);
const uniform = (n: number, scale: number) => Float32Array.from({ length: n }, () => scale * (2 * random() - 1));

interface Case {
  name: string;
  preset: 'tiny' | 'wide';
  packageDtype: 'fp32' | 'fp16';
  tolerance: number;
  greedy: boolean;
}

const CASES: Case[] = [
  { name: 'tiny fp32', preset: 'tiny', packageDtype: 'fp32', tolerance: 1e-5, greedy: true },
  { name: 'wide fp32', preset: 'wide', packageDtype: 'fp32', tolerance: 1e-5, greedy: true },
  { name: 'tiny fp16', preset: 'tiny', packageDtype: 'fp16', tolerance: 1e-2, greedy: false },
];

describe.each(CASES)('converted $name model vs the float64 reference', (c) => {
  let model: LoadedModel;
  let ref: ReferenceModel;

  beforeAll(async () => {
    const fx = await tinyPackage({ preset: c.preset, packageDtype: c.packageDtype });
    model = await loadModel(fx.packageDir, { executionProvider: 'cpu', threads: 1 });
    ref = openReferenceModel(fx.checkpointDir);
  });
  afterAll(async () => {
    await model?.close();
    ref?.close();
  });

  it(`vision encoder + projector: relative error ≤ ${c.tolerance} (random pixels, seed ${seed})`, async () => {
    const s = model.manifest.vision.imageSize;
    const frames = c.preset === 'tiny' && c.packageDtype === 'fp32' ? 2 : 1; // the float64 reference is slow: batch of 2 once
    const pixels = uniform(frames * 3 * s * s, 1);
    const got = await model.vision.encode(pixels, frames, 2);
    for (let f = 0; f < frames; f++) {
      const expected = referenceImageFeatures(Float64Array.from(pixels.subarray(f * 3 * s * s, (f + 1) * 3 * s * s)), ref.config.vision, ref.weights);
      expect(expected.rows).toBe(model.manifest.vision.numPatches);
      const err = maxRelativeError(got[f], expected.data);
      if (process.env.LONGSIGHT_SHOW_ERRORS) console.log(`${c.name} vision frame ${f}: ${err.toExponential(2)}`);
      expect(err).toBeLessThanOrEqual(c.tolerance);
      expect(err).toBeGreaterThanOrEqual(0);
    }
  });

  it.each([
    ['stock RoPE', 0, false],
    ['visual-window YaRN, s > 1', 64, false],
    ['visual-window YaRN with the attention temperature', 64, true],
  ])(`decoder logits with %s: relative error ≤ ${c.tolerance} (seed ${seed})`, async (_label, window, temperature) => {
    const h = model.manifest.text.hiddenSize;
    const T = 23;
    const embeds = uniform(T * h, 0.5);
    const rope = RopeExtensionSchema.parse({ mode: window ? 'visual-yarn' : 'off', visualContextWindow: window, attentionTemperature: temperature });
    const rotary = jobRotary(model.decoder, { headDim: model.manifest.text.headDim, ropeTheta: model.manifest.text.ropeTheta, languageWindow: 32768, rope, visualTokens: 200, positions: 64 });
    const got = await model.decoder.prefill(embeds, T, model.decoder.emptyCache(), rotary.tensors, 64);
    // The reference builds its own float64 tables from the frequencies.
    const freqs = computeRopeFrequencies({ headDim: model.manifest.text.headDim, ropeTheta: model.manifest.text.ropeTheta, rope, visualTokens: 200, languageWindow: 32768 });
    if (window) expect(freqs.scale).toBeCloseTo(200 / 64, 12);
    const tables = ropeTablesFromInvFreq(window ? freqs.invFreq : stockInverseFrequencies(ref.config.text.hiddenSize / ref.config.text.heads, ref.config.text.ropeTheta), T);
    if (temperature) {
      // YaRN's temperature: cos and sin scaled by 0.1·ln(s) + 1, so q·k scales by its square.
      expect(freqs.attentionFactor).toBeCloseTo(0.1 * Math.log(200 / 64) + 1, 12);
      for (let i = 0; i < tables.cos.length; i++) {
        tables.cos[i] *= freqs.attentionFactor;
        tables.sin[i] *= freqs.attentionFactor;
      }
    }
    const expected = referenceLastLogits(mat(T, h, Float64Array.from(embeds)), ref.config.text, ref.weights, tables);
    expect(got.logits.length).toBe(expected.length);
    if (process.env.LONGSIGHT_SHOW_ERRORS) console.log(`${c.name} decoder (${_label}): ${maxRelativeError(got.logits, expected).toExponential(2)}`);
    expect(maxRelativeError(got.logits, expected)).toBeLessThanOrEqual(c.tolerance);
  });

  // Greedy equality is asserted where the tolerance is tight (fp32); an fp16 rounding may legitimately flip a near tie.
  if (c.greedy) it('greedy continuation of a token prompt equals the reference (KV-cache decode vs full recomputation)', async () => {
    const ids = Array.from({ length: 9 }, () => Math.floor(random() * 151000));
    const maxNew = 5;
    const rope = DEFAULT_SETTINGS.rope;
    const rotary = jobRotary(model.decoder, { headDim: model.manifest.text.headDim, ropeTheta: model.manifest.text.ropeTheta, languageWindow: 32768, rope, visualTokens: 0, positions: ids.length + maxNew });
    const start = await model.decoder.prefill(model.embeddings.gather(ids), ids.length, model.decoder.emptyCache(), rotary.tensors, 4);
    const got = await generate(model.decoder, model.embeddings, start, rotary.tensors, { maxNewTokens: maxNew, stopIds: new Set(), sampler: argmax });
    const invFreq = stockInverseFrequencies(ref.config.text.hiddenSize / ref.config.text.heads, ref.config.text.ropeTheta);
    const expected = referenceGreedy(referenceEmbed(ids, ref.weights), ref.config.text, ref.weights, (n) => ropeTablesFromInvFreq(invFreq, n), maxNew, []);
    expect(got.ids).toEqual(expected);
  });
});
