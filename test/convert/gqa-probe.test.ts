/**
 * @jest-environment ./test/convert/support/onnx-environment.js
 */
/**
 * Probe of onnxruntime-node's com.microsoft.GroupQueryAttention on the CPU EP, in the exact
 * configuration decoder.onnx uses (packed QKV, do_rotary with cos/sin cache inputs, rotate_half,
 * KV cache in BNSH): one-shot prefill, a multi-token chunk on top of an existing cache, and
 * 1-token decode steps must all equal a plain causal attention with RoPE computed here.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { GraphBuilder, float, int } from '../../container/onnx/graph-builder';
import { fromTensor, seededRandom, stockRope, toTensor } from './helpers';

const H = 4;
const KV = 2;
const M = 64; // rows of the rotary tables
const THETA = 10000;

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'longsight-gqa-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

type Dt = 'float32' | 'float16';

async function gqaSession(dt: Dt, D: number): Promise<ort.InferenceSession> {
  const g = new GraphBuilder('gqa_probe', path.join(tmp, `gqa-${dt}-${D}.onnx`));
  g.input('qkv', dt, [1, 'T', (H + 2 * KV) * D]);
  g.input('past_key', dt, [1, KV, 'P', D]);
  g.input('past_value', dt, [1, KV, 'P', D]);
  g.input('seqlens_k', 'int32', [1]);
  g.input('total_sequence_length', 'int32', []);
  g.input('cos_cache', dt, ['max_positions', D / 2]);
  g.input('sin_cache', dt, ['max_positions', D / 2]);
  const [o, pk, pv] = g.node(
    'GroupQueryAttention',
    ['qkv', '', '', 'past_key', 'past_value', 'seqlens_k', 'total_sequence_length', 'cos_cache', 'sin_cache'],
    3,
    { num_heads: int(H), kv_num_heads: int(KV), do_rotary: int(1), rotary_interleaved: int(0), scale: float(1 / Math.sqrt(D)) },
    'com.microsoft',
  );
  g.output(o, 'out', dt, [1, 'T', H * D]);
  g.output(pk, 'present_key', dt, [1, KV, 'S', D]);
  g.output(pv, 'present_value', dt, [1, KV, 'S', D]);
  const file = g.save([{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }]);
  return ort.InferenceSession.create(file);
}

/** Values in [−0.5, 0.5). */
const random = (n: number, seed: number): Float32Array => seededRandom(seed, n, 0.5);

/** Plain causal GQA with rotate_half RoPE at positions 0…T−1, float64. */
function reference(qkv: Float32Array, T: number, D: number): Float64Array {
  const W = (H + 2 * KV) * D;
  const rope = (t: number, base: number): Float64Array => {
    const y = new Float64Array(D);
    for (let i = 0; i < D / 2; i++) {
      const th = t * Math.pow(THETA, (-2 * i) / D);
      const a = qkv[base + i];
      const b = qkv[base + i + D / 2];
      y[i] = a * Math.cos(th) - b * Math.sin(th);
      y[i + D / 2] = b * Math.cos(th) + a * Math.sin(th);
    }
    return y;
  };
  const out = new Float64Array(T * H * D);
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < H; h++) {
      const kvh = Math.floor(h / (H / KV));
      const q = rope(t, t * W + h * D);
      const scores: number[] = [];
      for (let u = 0; u <= t; u++) {
        const k = rope(u, u * W + H * D + kvh * D);
        let dot = 0;
        for (let i = 0; i < D; i++) dot += q[i] * k[i];
        scores.push(dot / Math.sqrt(D));
      }
      const mx = Math.max(...scores);
      const e = scores.map((s) => Math.exp(s - mx));
      const z = e.reduce((a, b) => a + b, 0);
      for (let u = 0; u <= t; u++) {
        for (let i = 0; i < D; i++) out[(t * H + h) * D + i] += (e[u] / z) * qkv[u * W + H * D + KV * D + kvh * D + i];
      }
    }
  }
  return out;
}

/** Runs positions [from, to) on top of `past` (P = from). */
async function step(s: ort.InferenceSession, dt: Dt, D: number, qkv: Float32Array, from: number, to: number, past?: { k: ort.Tensor; v: ort.Tensor }, rows = M) {
  const W = (H + 2 * KV) * D;
  const empty = () => toTensor(dt, new Float32Array(0), [1, KV, 0, D]);
  const { cos, sin } = stockRope(D, THETA, rows);
  const r = await s.run({
    qkv: toTensor(dt, qkv.slice(from * W, to * W), [1, to - from, W]),
    past_key: past?.k ?? empty(),
    past_value: past?.v ?? empty(),
    seqlens_k: new ort.Tensor('int32', Int32Array.from([to - 1]), [1]),
    total_sequence_length: new ort.Tensor('int32', Int32Array.from([to]), []),
    cos_cache: toTensor(dt, cos, [rows, D / 2]),
    sin_cache: toTensor(dt, sin, [rows, D / 2]),
  });
  return { out: fromTensor(r.out as ort.Tensor), past: { k: r.present_key, v: r.present_value } };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe.each([
  ['float32', 1e-5],
  ['float16', 3e-3],
] as const)('GroupQueryAttention on the CPU EP (%s)', (dt, tol) => {
  const D = 16;
  const T = 9;
  const qkv = random(T * (H + 2 * KV) * D, 7);
  const expected = reference(qkv, T, D);

  it('one-shot prefill equals causal attention with RoPE', async () => {
    const s = await gqaSession(dt, D);
    const r = await step(s, dt, D, qkv, 0, T);
    expect(maxAbsDiff(r.out, expected)).toBeLessThan(tol);
    expect(r.past.k.dims).toEqual([1, KV, T, D]);
  });

  it('chunked prefill (chunks on top of the cache) and 1-token decode steps equal one shot', async () => {
    const s = await gqaSession(dt, D);
    const bounds = [0, 4, 7, 8, 9]; // chunk of 4, chunk of 3 on a cache of 4, then two decode steps
    const outs: number[] = [];
    let past: { k: ort.Tensor; v: ort.Tensor } | undefined;
    for (let i = 0; i + 1 < bounds.length; i++) {
      const r = await step(s, dt, D, qkv, bounds[i], bounds[i + 1], past);
      expect(r.past.k.dims).toEqual([1, KV, bounds[i + 1], D]);
      outs.push(...r.out);
      past = r.past;
    }
    expect(maxAbsDiff(outs, expected)).toBeLessThan(tol);
  });
});

it('GroupQueryAttention with rotary rejects a head size that is not a multiple of 16 (why the converter checks it)', async () => {
  const s = await gqaSession('float32', 8);
  await expect(step(s, 'float32', 8, random(3 * (H + 2 * KV) * 8, 1), 0, 3)).rejects.toThrow(/multiple of 16/);
});

it('needs rotary tables covering every position up to total_sequence_length, and no more', async () => {
  const s = await gqaSession('float32', 16);
  const qkv = random(9 * (H + 2 * KV) * 16, 3);
  await expect(step(s, 'float32', 16, qkv, 0, 9, undefined, 8)).rejects.toThrow(/cos_cache dimension 0 shall not be less than total_sequence_length/);
  const exact = await step(s, 'float32', 16, qkv, 0, 9, undefined, 9);
  const longer = await step(s, 'float32', 16, qkv, 0, 9, undefined, 64);
  expect(maxAbsDiff(exact.out, longer.out)).toBe(0);
});
