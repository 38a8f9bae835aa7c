/**
 * @jest-environment ./test/convert/support/onnx-environment.js
 */
/**
 * `npm run gpu:check` needs an NVIDIA GPU and onnxruntime-node's CUDA binaries, which this machine
 * (and CI) lack; what runs without them is tested here: reading nvidia-smi, mapping the GPU to the
 * planner's figures, the CUDA-vs-CPU comparison, the one-screen report, and the entry point's refusal
 * on a machine without a GPU.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { commonPrefix, compareLogits } from '../../container/gpu-check/compare';
import { runGpuCheck } from '../../container/gpu-check/main';
import { gpuModelOf, parseGpuQuery } from '../../container/gpu-check/nvidia-smi';
import { formatGpuCheck } from '../../container/gpu-check/report';

jest.setTimeout(180_000);

describe('gpu:check, the parts that run without a GPU', () => {
  it('reads nvidia-smi\'s CSV and names unexpected output', () => {
    expect(parseGpuQuery('NVIDIA L40S, 46068, 550.54.15\n')).toEqual({ name: 'NVIDIA L40S', memoryTotalMiB: 46068, driver: '550.54.15' });
    expect(parseGpuQuery('\nTesla T4, 15360, 535.104.05\nTesla T4, 15360, 535.104.05\n').name).toBe('Tesla T4'); // the first GPU
    expect(() => parseGpuQuery('')).toThrow(/listed no GPU/);
    expect(() => parseGpuQuery('No devices were found, x')).toThrow(/unexpected nvidia-smi output/);
  });

  it('maps GPU names to the planner\'s figures (and says when it has none)', () => {
    expect(gpuModelOf('NVIDIA A10G')).toBe('A10G');
    expect(gpuModelOf('Tesla T4')).toBe('T4');
    expect(gpuModelOf('NVIDIA L4')).toBe('L4');
    expect(gpuModelOf('NVIDIA L40S')).toBe('L40S');
    expect(gpuModelOf('NVIDIA A100-SXM4-40GB')).toBe('A100-40GB');
    expect(gpuModelOf('NVIDIA H100 80GB HBM3')).toBe('H100-80GB');
    expect(gpuModelOf('NVIDIA H200')).toBeUndefined();
  });

  it('compares logits (max |Δ|, relative to the CPU\'s scale, same argmax) and counts equal leading tokens', () => {
    const c = compareLogits(Float32Array.of(1, 4.5, -2), Float32Array.of(1.25, 4, -2));
    expect(c.maxAbs).toBeCloseTo(0.5, 12);
    expect(c.maxRel).toBeCloseTo(0.5 / 4, 12);
    expect(c.sameArgmax).toBe(true);
    expect(compareLogits(Float32Array.of(0, 1), Float32Array.of(1, 0)).sameArgmax).toBe(false);
    expect(() => compareLogits([1], [1, 2])).toThrow(/different lengths/);
    expect(commonPrefix([5, 6, 7, 8], [5, 6, 9, 8])).toBe(2);
    expect(commonPrefix([], [1])).toBe(0);
  });

  it('prints one screen with the measurements beside the plan', () => {
    const byKind = { pixels: 1, visionOut: 1, embeddings: 1, kvIn: 0, kvOut: 0, logits: 0, tokenIds: 8, logprobs: 4, rotary: 1, control: 1 };
    const text = formatGpuCheck({
      gpu: { name: 'NVIDIA L40S', memoryTotalMiB: 46068, driver: '550.54.15' },
      plannedGpu: 'L40S',
      convertSeconds: { fp16: 41.2, fp32: 55.1 },
      logits: { maxAbs: 0.012, maxRel: 0.0031, sameArgmax: true },
      tokens: { cuda: [1, 2, 3], cpu: [1, 2, 4], common: 2 },
      measured: { visionFramesPerS: 210, prefillTokensPerS: 41000, decodeTokensPerS: 180, peakGpuMemMiB: 3900 },
      planned: { visionFramesPerS: 300, prefillTokensPerS: 60000, decodeTokensPerS: 200, peakGpuMemMiB: 3600 },
      ledger: { total: 60_000_000, perGeneratedToken: 12, byKind },
      frames: 64,
      tokensGenerated: 256,
      totalSeconds: 250,
    });
    expect(text.split('\n').length).toBeLessThanOrEqual(24);
    expect(text).toMatch(/max relative 3\.10e-3/);
    expect(text).toMatch(/greedy tokens: 2 of 3 equal from the start/);
    expect(text).toMatch(/decode\s+180\.0 tokens\/s\s+planned 200\.0 \(measured\/planned 0\.90\)/);
    expect(text).toMatch(/12 B per generated token/);
  });

  it('refuses to start on a machine without a GPU, naming what is missing (exit 2)', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(__dirname, '../../container/gpu-check/main.ts')], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, PATH: '/usr/bin:/bin' } });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/gpu:check: (no NVIDIA GPU visible|CUDA execution provider requested)/);
  });

  it('runs its whole procedure as a CPU rehearsal on the tiny checkpoint (CUDA swapped for the CPU EP, no nvidia-smi)', async () => {
    const r = await runGpuCheck([], { device: 'cpu', preset: 'tiny', speedFrames: 8, compareFrames: 2, decodeTokens: 16, gpu: { name: 'NVIDIA L40S', memoryTotalMiB: 46068, driver: 'rehearsal' } });
    // fp16 vs fp32 packages of one checkpoint, both on the CPU: within the fp16 tolerance.
    expect(r.logits.maxRel).toBeLessThan(1e-2);
    expect(r.tokens.cuda.length).toBeGreaterThan(0);
    expect(r.measured.visionFramesPerS).toBeGreaterThan(0);
    expect(r.measured.decodeTokensPerS).toBeGreaterThan(0);
    expect(r.plannedGpu).toBe('L40S');
    expect(r.planned!.decodeTokensPerS).toBeGreaterThan(0);
    expect(r.ledger.perGeneratedToken).toBe(12);
    expect(r.ledger.byKind.kvIn + r.ledger.byKind.kvOut).toBe(0); // one question: no cache crosses
    expect(formatGpuCheck(r).split('\n').length).toBeLessThanOrEqual(24);
  });
});
