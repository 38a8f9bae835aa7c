/**
 * Next-token choice from last-position logits: greedy (argmax, lowest id on ties) by default;
 * with temperature > 0, softmax(logits / T) restricted to the top-p nucleus and drawn with a
 * seeded PRNG (mulberry32), so a job's sampled answers are reproducible.
 */

export interface SamplingConfig {
  temperature: number;
  topP: number;
  seed: number;
}

export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

/** mulberry32: a small, well-mixed 32-bit PRNG; returns floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type Sampler = (logits: Float32Array) => number;

export function createSampler(cfg: SamplingConfig): Sampler {
  if (cfg.temperature <= 0) return argmax;
  const random = seededRandom(cfg.seed);
  return (logits) => sampleTopP(logits, cfg.temperature, cfg.topP, random());
}

/**
 * Draws from the top-p nucleus of softmax(logits / temperature) at uniform draw u ∈ [0, 1).
 * The nucleus is found with a native typed-array sort of the probabilities (a flat distribution
 * over a 152K vocabulary keeps most of it); tokens tied at the cut-off probability are all kept.
 */
export function sampleTopP(logits: ArrayLike<number>, temperature: number, topP: number, u: number): number {
  const n = logits.length;
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (logits[i] > max) max = logits[i];
  const probs = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    probs[i] = Math.exp((logits[i] - max) / temperature);
    sum += probs[i];
  }
  for (let i = 0; i < n; i++) probs[i] /= sum;
  // Smallest set of most likely tokens whose mass reaches top_p: the cut-off probability.
  const sorted = Float64Array.from(probs).sort().reverse();
  let mass = 0;
  let cutoff = sorted[0];
  for (let k = 0; k < n; k++) {
    mass += sorted[k];
    cutoff = sorted[k];
    if (mass >= topP) break;
  }
  let kept = 0;
  for (let i = 0; i < n; i++) if (probs[i] >= cutoff) kept += probs[i];
  let target = u * kept;
  let last = 0;
  for (let i = 0; i < n; i++) {
    if (probs[i] < cutoff) continue;
    last = i;
    target -= probs[i];
    if (target < 0) return i;
  }
  return last;
}
