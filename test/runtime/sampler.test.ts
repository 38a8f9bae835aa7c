/** Token choice: greedy argmax, and seeded temperature/top-p sampling. */
import { argmax, createSampler, sampleTopP, seededRandom } from '../../container/runtime/sampler';

describe('sampler', () => {
  it('greedy picks the largest logit (lowest id on ties)', () => {
    expect(argmax(Float32Array.of(0.1, 3, -2, 3))).toBe(1);
    expect(createSampler({ temperature: 0, topP: 1, seed: 0 })(Float32Array.of(1, 2, 0))).toBe(1);
  });

  it('top-p keeps the smallest nucleus reaching p and draws inside it', () => {
    const logits = [Math.log(0.5), Math.log(0.3), Math.log(0.15), Math.log(0.05)];
    // nucleus for p = 0.7: tokens 0 and 1 (0.5 + 0.3), renormalised to 0.625 / 0.375
    expect(sampleTopP(logits, 1, 0.7, 0)).toBe(0);
    expect(sampleTopP(logits, 1, 0.7, 0.62)).toBe(0);
    expect(sampleTopP(logits, 1, 0.7, 0.63)).toBe(1);
    expect(sampleTopP(logits, 1, 0.7, 0.999)).toBe(1);
    // p = 1 reaches token 3 at the top of [0, 1)
    expect(sampleTopP(logits, 1, 1, 0.999)).toBe(3);
    // token order in the vocabulary does not matter, only probability
    const shuffled = [logits[2], logits[0], logits[3], logits[1]];
    expect(sampleTopP(shuffled, 1, 0.7, 0.1)).toBe(1);
    expect(sampleTopP(shuffled, 1, 0.7, 0.9)).toBe(3);
    // temperature sharpens: at T = 0.05 the top token takes essentially all the mass
    expect(sampleTopP(logits, 0.05, 1, 0.999)).toBe(0);
  });

  it('is reproducible for a seed and differs between seeds', () => {
    const logits = Float32Array.from({ length: 50 }, (_, i) => Math.sin(i));
    const draw = (seed: number) => {
      const s = createSampler({ temperature: 1.5, topP: 0.95, seed });
      return Array.from({ length: 20 }, () => s(logits));
    };
    expect(draw(7)).toEqual(draw(7));
    expect(draw(7)).not.toEqual(draw(8));
    const r = seededRandom(1);
    for (let i = 0; i < 100; i++) {
      const u = r();
      expect(u).toBeGreaterThanOrEqual(0);
      expect(u).toBeLessThan(1);
    }
  });
});
