/**
 * @jest-environment ./test/convert/support/onnx-environment.js
 */
/**
 * The converted graphs against the independent float64 reference (container/reference/), on
 * fresh random inputs each run: SigLIP + projector features (the vision graph at stride 1, i.e.
 * W = I), the graph's bilinear pooling at every stride the schedules use against the reference's own
 * interpolation, decoder last-position logits (with stock and extended RoPE tables), and greedy
 * continuations from the graph's token loop and from the host loop. Max relative error (max |Δ| / max |ref|)
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
  referenceBilinear,
  ropeTablesFromInvFreq,
  type ReferenceModel,
} from '../../container/reference';
import { argmax } from '../../container/runtime/sampler';
import { generate } from '../../container/runtime/generate';
import { loadModel, type LoadedModel } from '../../container/runtime/loaded-model';
import { jobRotary } from '../../container/runtime/rotary';
import { bilinearResize } from '../../container/model/bilinear-resize';
import { maxRelativeError, randomSource, tinyPackage } from './fixtures';

const maxAbsoluteError = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

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
    const grid = model.manifest.vision.gridSize;
    const per = model.manifest.vision.numPatches * model.manifest.text.hiddenSize;
    const got = await model.vision.encode(pixels, frames, grid); // side = grid: stride 1, no pooling
    for (let f = 0; f < frames; f++) {
      const expected = referenceImageFeatures(Float64Array.from(pixels.subarray(f * 3 * s * s, (f + 1) * 3 * s * s)), ref.config.vision, ref.weights);
      expect(expected.rows).toBe(model.manifest.vision.numPatches);
      const err = maxRelativeError(got.subarray(f * per, (f + 1) * per), expected.data);
      if (process.env.LONGSIGHT_SHOW_ERRORS) console.log(`${c.name} vision frame ${f}: ${err.toExponential(2)}`);
      expect(err).toBeLessThanOrEqual(c.tolerance);
      expect(err).toBeGreaterThanOrEqual(0);
    }
  });

  it('in-graph bilinear pooling equals the reference interpolation at every stride the schedules use (1, 2, 3, 4, 6, 8, 27)', async () => {
    const s = model.manifest.vision.imageSize;
    const grid = model.manifest.vision.gridSize;
    const hidden = model.manifest.text.hiddenSize;
    const pixels = uniform(3 * s * s, 1);
    const full = await model.vision.encode(pixels, 1, grid);
    const features = mat(grid * grid, hidden, Float64Array.from(full));
    // fp32 pooling of fp32 features: within a few ulps of the float64 interpolation; fp16 packages pool in fp32 too.
    const tol = c.packageDtype === 'fp32' ? 1e-6 : 1e-5;
    for (const stride of [1, 2, 3, 4, 6, 8, 27]) {
      const side = Math.ceil(grid / stride);
      const pooled = await model.vision.encode(pixels, 1, side);
      const expected = referenceBilinear(features, grid, side);
      expect(pooled.length).toBe(side * side * hidden);
      expect(maxRelativeError(pooled, expected.data)).toBeLessThanOrEqual(tol);
      // …and equals the host pooling the runtime used before pooling moved into the graph.
      const host = bilinearResize(full, { height: grid, width: grid, channels: hidden }, side, side);
      expect(maxAbsoluteError(pooled, host)).toBeLessThanOrEqual(c.packageDtype === 'fp32' ? 1e-6 : 1e-5);
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
    const host = await generate(model.decoder, model.embeddings, start, rotary.tensors, { maxNewTokens: maxNew, stopIds: new Set(), sampler: argmax });
    const inGraph = await model.decoder.generate(model.embeddings.gather(ids), ids.length, model.decoder.emptyCache(), rotary.tensors, { maxNewTokens: maxNew, stopIds: [], chunk: 4, temperature: 0, seed: 0 });
    const invFreq = stockInverseFrequencies(ref.config.text.hiddenSize / ref.config.text.heads, ref.config.text.ropeTheta);
    const expected = referenceGreedy(referenceEmbed(ids, ref.weights), ref.config.text, ref.weights, (n) => ropeTablesFromInvFreq(invFreq, n), maxNew, []);
    expect(host.ids).toEqual(expected);
    expect(inGraph.ids).toEqual(expected);
  });
});
