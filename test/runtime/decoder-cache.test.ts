/**
 * @jest-environment ./test/convert/support/onnx-environment.js
 */
/**
 * KV-cache bookkeeping of the decoder runner, onnxruntime against itself on the tiny model:
 * a one-token decode on the cache equals recomputing the whole sequence, chunked prefill equals
 * one-shot prefill (logits and cache), and a prefix cache shared by two continuations is not
 * disturbed by either.
 */
import { DEFAULT_SETTINGS } from '../../lib/contracts';
import { loadModel, type LoadedModel } from '../../container/runtime/loaded-model';
import { jobRotary, type JobRotary } from '../../container/runtime/rotary';
import { maxRelativeError, randomSource, tinyPackage } from './fixtures';

jest.setTimeout(360_000);

const seed = (Date.now() ^ 0x5bd1e995) >>> 0;
const random = randomSource(seed);

describe(`decoder KV cache (seed ${seed})`, () => {
  let model: LoadedModel;
  let rotary: JobRotary;
  let h: number;
  const uniform = (rows: number) => Float32Array.from({ length: rows * h }, () => 2 * random() - 1);

  beforeAll(async () => {
    const fx = await tinyPackage({ preset: 'tiny' });
    model = await loadModel(fx.packageDir, { executionProvider: 'cpu', threads: 1 });
    h = model.manifest.text.hiddenSize;
    // An extended table (s = 4), so positions matter in every dimension pair.
    rotary = jobRotary(model.decoder, {
      headDim: model.manifest.text.headDim,
      ropeTheta: model.manifest.text.ropeTheta,
      languageWindow: 32768,
      rope: { ...DEFAULT_SETTINGS.rope, visualContextWindow: 10 },
      visualTokens: 40,
      positions: 128,
    });
    expect(rotary.scale).toBe(4);
  });
  afterAll(() => model?.close());

  it('one-token decode steps on the cache equal recomputing the full sequence', async () => {
    const T = 30;
    const embeds = uniform(T);
    let state = await model.decoder.prefill(embeds.subarray(0, 20 * h), 20, model.decoder.emptyCache(), rotary.tensors, 64);
    for (let t = 20; t < T; t++) state = await model.decoder.step(embeds.subarray(t * h, (t + 1) * h), 1, state.cache, rotary.tensors);
    const full = await model.decoder.prefill(embeds, T, model.decoder.emptyCache(), rotary.tensors, T);
    expect(state.cache.length).toBe(T);
    expect(maxRelativeError(state.logits, full.logits)).toBeLessThan(1e-5);
  });

  it('chunked prefill equals one-shot prefill (logits and cache), for chunk sizes that do and do not divide the length', async () => {
    const T = 37;
    const embeds = uniform(T);
    const once = await model.decoder.prefill(embeds, T, model.decoder.emptyCache(), rotary.tensors, T);
    for (const chunk of [1, 5, 16, 36]) {
      // The chunks are iterations of the graph's loop: one run, however many chunks.
      const chunked = await model.decoder.prefill(embeds, T, model.decoder.emptyCache(), rotary.tensors, chunk);
      expect(chunked.cache.length).toBe(T);
      expect(maxRelativeError(chunked.logits, once.logits)).toBeLessThan(1e-5);
      for (let l = 0; l < model.manifest.text.numLayers; l++) {
        expect(maxRelativeError(chunked.cache.keys[l].data as Float32Array, once.cache.keys[l].data as Float32Array)).toBeLessThan(1e-5);
        expect(maxRelativeError(chunked.cache.values[l].data as Float32Array, once.cache.values[l].data as Float32Array)).toBeLessThan(1e-5);
      }
    }
  });

  it('a shared prefix cache serves several continuations without being changed by them', async () => {
    const prefixRows = uniform(25);
    const a = uniform(6);
    const b = uniform(9);
    const prefix = await model.decoder.prefill(prefixRows, 25, model.decoder.emptyCache(), rotary.tensors, 8);
    const snapshot = Float32Array.from(prefix.cache.keys[0].data as Float32Array);
    const viaPrefixA = await model.decoder.prefill(a, 6, prefix.cache, rotary.tensors, 8);
    const viaPrefixB = await model.decoder.prefill(b, 9, prefix.cache, rotary.tensors, 8);
    expect(Float32Array.from(prefix.cache.keys[0].data as Float32Array)).toEqual(snapshot);
    const cat = (x: Float32Array, y: Float32Array) => {
      const out = new Float32Array(x.length + y.length);
      out.set(x);
      out.set(y, x.length);
      return out;
    };
    const fullA = await model.decoder.prefill(cat(prefixRows, a), 31, model.decoder.emptyCache(), rotary.tensors, 64);
    const fullB = await model.decoder.prefill(cat(prefixRows, b), 34, model.decoder.emptyCache(), rotary.tensors, 64);
    expect(maxRelativeError(viaPrefixA.logits, fullA.logits)).toBeLessThan(1e-5);
    expect(maxRelativeError(viaPrefixB.logits, fullB.logits)).toBeLessThan(1e-5);
  });

  it('refuses a sequence longer than the rotary tables and malformed chunks', async () => {
    const short = jobRotary(model.decoder, { headDim: model.manifest.text.headDim, ropeTheta: model.manifest.text.ropeTheta, languageWindow: 32768, rope: DEFAULT_SETTINGS.rope, visualTokens: 0, positions: 4 });
    await expect(model.decoder.prefill(uniform(5), 5, model.decoder.emptyCache(), short.tensors, 8)).rejects.toThrow(/exceeds the rotary tables/);
    await expect(model.decoder.step(uniform(2), 3, model.decoder.emptyCache(), short.tensors)).rejects.toThrow(/rows of/);
    await expect(model.decoder.prefill(uniform(2), 2, model.decoder.emptyCache(), short.tensors, 0)).rejects.toThrow(/chunk/);
  });
});
