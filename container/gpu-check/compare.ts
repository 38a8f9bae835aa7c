/** How the CUDA fp16 run compares with the CPU fp32 run: logits error and greedy-token agreement. */

export interface LogitsComparison {
  maxAbs: number;
  /** max |a − b| / max |b| (the runtime tests' measure). */
  maxRel: number;
  /** Whether both pick the same next token. */
  sameArgmax: boolean;
}

function argmax(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

export function compareLogits(cuda: ArrayLike<number>, cpu: ArrayLike<number>): LogitsComparison {
  if (cuda.length !== cpu.length) throw new Error(`logits of different lengths: ${cuda.length} vs ${cpu.length}`);
  let maxAbs = 0;
  let ref = 0;
  for (let i = 0; i < cpu.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(cuda[i] - cpu[i]));
    ref = Math.max(ref, Math.abs(cpu[i]));
  }
  return { maxAbs, maxRel: maxAbs / (ref || 1), sameArgmax: argmax(cuda) === argmax(cpu) };
}

/** Tokens equal from the start (fp16 and fp32 may part ways after a near tie; from there on they differ). */
export function commonPrefix(a: readonly number[], b: readonly number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}
