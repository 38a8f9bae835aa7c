/**
 * @jest-environment ./test/convert/support/onnx-environment.js
 */
/**
 * The decoder graph's token loop (ONNX Loop, KV cache as loop state) against the host loop over the
 * same graph, on the `wide` tiny checkpoint (its greedy tokens vary, unlike `tiny`'s): identical
 * greedy tokens, log-probabilities equal to log-softmax of the host's logits, stop ids, the token
 * budget, prefill chunking inside the loop, a shared prefix cache, and seeded Gumbel-max sampling.
 */
import { DEFAULT_SETTINGS } from '../../lib/contracts';
import { generate } from '../../container/runtime/generate';
import { loadModel, type LoadedModel } from '../../container/runtime/loaded-model';
import { jobRotary, type JobRotary } from '../../container/runtime/rotary';
import { argmax } from '../../container/runtime/sampler';
import { randomSource, tinyPackage } from './fixtures';

jest.setTimeout(180_000);

const seed = (Date.now() ^ 0x2545f491) >>> 0;
const random = randomSource(seed);
const NEW = 40;

/** The gap between the largest and second-largest logit. */
function topGap(l: Float32Array): number {
  let first = -Infinity;
  let second = -Infinity;
  for (const v of l) {
    if (v > first) [first, second] = [v, first];
    else if (v > second) second = v;
  }
  return first - second;
}

describe(`in-graph generation vs the host loop (wide checkpoint, seed ${seed})`, () => {
  let model: LoadedModel;
  let rotary: JobRotary;
  let prompt: number[];
  let host: { ids: number[]; logits: Float32Array[] };

  const greedy = (over: Partial<Parameters<LoadedModel['decoder']['generate']>[4]> = {}) => ({ maxNewTokens: NEW, stopIds: [] as number[], chunk: 5, temperature: 0, seed: 0, ...over });

  beforeAll(async () => {
    const fx = await tinyPackage({ preset: 'wide' });
    model = await loadModel(fx.packageDir, { executionProvider: 'cpu', threads: 1 });
    prompt = Array.from({ length: 12 }, () => Math.floor(random() * 151000));
    rotary = jobRotary(model.decoder, { headDim: model.manifest.text.headDim, ropeTheta: model.manifest.text.ropeTheta, languageWindow: 32768, rope: DEFAULT_SETTINGS.rope, visualTokens: 0, positions: 128 });
    const start = await model.decoder.prefill(model.embeddings.gather(prompt), prompt.length, model.decoder.emptyCache(), rotary.tensors, 5);
    const logits: Float32Array[] = [];
    const r = await generate(model.decoder, model.embeddings, start, rotary.tensors, { maxNewTokens: NEW, stopIds: new Set(), sampler: argmax, onLogits: (l) => logits.push(Float32Array.from(l)) });
    host = { ids: r.ids, logits };
    expect(new Set(host.ids).size).toBeGreaterThanOrEqual(5); // tokens vary, so equality below means something
  });
  afterAll(() => model?.close());

  const embeds = () => model.embeddings.gather(prompt);

  it('greedy tokens equal the host loop token for token, and log-probabilities equal log-softmax of its logits', async () => {
    const g = await model.decoder.generate(embeds(), prompt.length, model.decoder.emptyCache(), rotary.tensors, greedy());
    expect(g.ids).toEqual(host.ids);
    expect(g.stoppedBy).toBe('max-new-tokens');
    g.logprobs.forEach((lp, i) => {
      const l = host.logits[i];
      let max = -Infinity;
      for (const v of l) max = Math.max(max, v);
      let sum = 0;
      for (const v of l) sum += Math.exp(v - max);
      expect(lp).toBeCloseTo(l[host.ids[i]] - max - Math.log(sum), 4);
    });
  });

  it('gives the same tokens for any prefill chunk inside the loop', async () => {
    for (const chunk of [1, 3, 12, 100]) {
      const g = await model.decoder.generate(embeds(), prompt.length, model.decoder.emptyCache(), rotary.tensors, greedy({ chunk }));
      expect(g.ids).toEqual(host.ids);
    }
  });

  it('stops after a stop id (not part of the answer) and at max_new_tokens', async () => {
    const k = host.ids.findIndex((id, i) => i >= 3 && host.ids.indexOf(id) === i);
    expect(k).toBeGreaterThanOrEqual(3);
    const stopped = await model.decoder.generate(embeds(), prompt.length, model.decoder.emptyCache(), rotary.tensors, greedy({ stopIds: [7, host.ids[k]] }));
    expect(stopped.ids).toEqual(host.ids.slice(0, k));
    expect(stopped.stoppedBy).toBe('stop-token');
    const short = await model.decoder.generate(embeds(), prompt.length, model.decoder.emptyCache(), rotary.tensors, greedy({ maxNewTokens: 1 }));
    expect(short.ids).toEqual(host.ids.slice(0, 1));
  });

  it('continues a shared prefix cache exactly as a run over the whole prompt', async () => {
    const prefix = await model.decoder.prefill(model.embeddings.gather(prompt.slice(0, 8)), 8, model.decoder.emptyCache(), rotary.tensors, 3);
    const g = await model.decoder.generate(model.embeddings.gather(prompt.slice(8)), prompt.length - 8, prefix.cache, rotary.tensors, greedy());
    expect(g.ids).toEqual(host.ids);
  });

  it('samples with Gumbel-max reproducibly per seed, and tends to greedy as the temperature goes to 0', async () => {
    const run = (temperature: number, s: number) => model.decoder.generate(embeds(), prompt.length, model.decoder.emptyCache(), rotary.tensors, greedy({ temperature, seed: s, maxNewTokens: 16 }));
    const a = await run(1, 11);
    const b = await run(1, 11);
    const c = await run(1, 12);
    expect(b.ids).toEqual(a.ids);
    expect(c.ids).not.toEqual(a.ids);
    // As T → 0, ArgMax(logits/T + g) is the greedy token wherever the top-2 gap exceeds T times the
    // widest Gumbel spread (u is clipped to [1e-7, 1 − 1e-7]: g ∈ [−2.8, 15.9]). A random prompt on a
    // random checkpoint can hold a near-tie, so compare up to the first step with a closer gap.
    const t = 1e-6;
    const decisive = host.logits.slice(0, 16).findIndex((l) => topGap(l) < 25 * t);
    const upTo = decisive === -1 ? 16 : decisive;
    expect((await run(t, 11)).ids.slice(0, upTo)).toEqual(host.ids.slice(0, upTo));
  });

  it('draws from softmax(logits / T): first-token frequencies over 150 seeds match the host logits', async () => {
    // A temperature at which the most likely first token has probability 0.5.
    const l = host.logits[0];
    const probsAt = (t: number) => {
      let max = -Infinity;
      for (const v of l) max = Math.max(max, v);
      const p = Float64Array.from(l, (v) => Math.exp((v - max) / t));
      const sum = p.reduce((a, b) => a + b, 0);
      return p.map((v) => v / sum);
    };
    let lo = 1e-4;
    let hi = 10;
    for (let i = 0; i < 60; i++) {
      const mid = Math.sqrt(lo * hi);
      if (probsAt(mid).reduce((a, b) => Math.max(a, b), 0) > 0.5) lo = mid;
      else hi = mid;
    }
    const t = lo;
    const p = probsAt(t);
    const order = Array.from(p.keys()).sort((a, b) => p[b] - p[a]);
    const counts = new Map<number, number>();
    const N = 150;
    for (let s = 0; s < N; s++) {
      const g = await model.decoder.generate(embeds(), prompt.length, model.decoder.emptyCache(), rotary.tensors, greedy({ temperature: t, seed: s, maxNewTokens: 1 }));
      counts.set(g.ids[0], (counts.get(g.ids[0]) ?? 0) + 1);
    }
    for (const id of order.slice(0, 2)) {
      const sd = Math.sqrt((p[id] * (1 - p[id])) / N);
      expect(Math.abs((counts.get(id) ?? 0) / N - p[id])).toBeLessThan(5 * sd);
    }
  });
});
