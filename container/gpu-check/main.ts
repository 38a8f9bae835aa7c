/**
 * `npm run gpu:check`: the GPU path, checked on a machine with an NVIDIA GPU and onnxruntime-node's
 * CUDA binaries (`npm run gpu:install`: onnxruntime-node's own installer, cuda12). It cannot run where
 * Longsight is developed and tested (no GPU there); its CUDA-free parts are tested (test/gpu-check).
 *
 * Steps: generate the 0.5B-shaped random checkpoint (Qwen2-0.5B decoder + SigLIP-so400m, real
 * vocabulary) → convert it to fp16 (--target cuda) and fp32 (--target cpu) → run the same 8-frame
 * job on CUDA and on the CPU and compare last-position logits and greedy tokens → time a 64-frame job
 * on CUDA (vision, prefill, in-graph decode) while sampling GPU memory with nvidia-smi → print the
 * measurements beside the planner's predictions for this GPU, and the job's transfer ledger.
 *
 *   npm run gpu:check [-- --work DIR] [--keep]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { DEFAULT_SETTINGS, InferenceSettingsSchema, PAPER_POOLING, questionId, type InferenceSettings } from '../../lib/contracts';
import { convertCheckpoint } from '../convert/convert';
import { planJob } from '../plan/job-plan';
import { loadPlanModel } from '../plan/model-dims';
import { GPU_SPECS, planJobTime } from '../plan/time';
import { createOnnxEngine, type OnnxEngine } from '../runtime/onnx-engine';
import { checkCudaAvailable } from '../runtime/session';
import { generateTinyCheckpoint } from '../testing/tiny-checkpoint';
import { commonPrefix, compareLogits } from './compare';
import { gpuModelOf, queryGpu, sampleGpuMemory, type GpuInfo } from './nvidia-smi';
import { formatGpuCheck, type GpuCheckResult } from './report';

/**
 * What the check runs. The defaults are the real check; a test runs the same steps with `device: 'cpu'`
 * and the tiny checkpoint, to exercise everything but CUDA itself where there is no GPU.
 */
export interface GpuCheckPlan {
  device: 'cuda' | 'cpu';
  preset: 'qwen2-0.5b' | 'tiny';
  speedFrames: number;
  compareFrames: number;
  decodeTokens: number;
  /** Given: skip nvidia-smi (the CPU rehearsal). */
  gpu?: GpuInfo;
}

export const REAL_CHECK: GpuCheckPlan = { device: 'cuda', preset: 'qwen2-0.5b', speedFrames: 64, compareFrames: 8, decodeTokens: 256 };
const QUESTION = [{ id: questionId('Describe this video in detail.'), text: 'Describe this video in detail.' }];

const say = (s: string) => process.stderr.write(`gpu:check: ${s}\n`);

/** Everything the check needs that this machine may lack, named; throws with what to do. */
export async function checkPrerequisites(): Promise<GpuInfo> {
  let gpu: GpuInfo;
  try {
    gpu = await queryGpu();
  } catch (e) {
    throw new Error(`no NVIDIA GPU visible: ${(e as Error).message}. Run gpu:check on a machine with an NVIDIA GPU, its driver and nvidia-smi.`);
  }
  checkCudaAvailable();
  return gpu;
}

async function syntheticFrames(n: number): Promise<Buffer[]> {
  return Promise.all(
    Array.from({ length: n }, (_, f) => {
      const s = 384;
      const rgb = Buffer.alloc(s * s * 3);
      for (let i = 0; i < s * s; i++) {
        const x = i % s;
        const y = Math.floor(i / s);
        rgb[i * 3] = (x + 5 * f) & 255;
        rgb[i * 3 + 1] = (y * 2 + 11 * f) & 255;
        rgb[i * 3 + 2] = ((x ^ y) + 23 * f) & 255;
      }
      return sharp(rgb, { raw: { width: s, height: s, channels: 3 } }).png().toBuffer();
    }),
  );
}

async function timed<T>(f: () => Promise<T>): Promise<{ value: T; seconds: number }> {
  const t = performance.now();
  const value = await f();
  return { value, seconds: (performance.now() - t) / 1000 };
}

async function buildPackages(work: string, preset: GpuCheckPlan['preset']): Promise<{ fp16: string; fp32: string; seconds: { fp16: number; fp32: number } }> {
  const ckpt = path.join(work, 'checkpoint');
  say(`generating the ${preset === 'tiny' ? 'tiny' : '0.5B-shaped'} random checkpoint (BF16${preset === 'tiny' ? '' : ', ~1.8 GB'})…`);
  if (!fs.existsSync(path.join(ckpt, 'config.json'))) generateTinyCheckpoint(ckpt, { preset, dtype: 'BF16', seed: 1 });
  say('converting to fp16 (CUDA) and fp32 (CPU)…');
  const fp16 = await timed(() => convertCheckpoint(ckpt, path.join(work, 'fp16'), { dtype: 'fp16' }));
  const fp32 = await timed(() => convertCheckpoint(ckpt, path.join(work, 'fp32'), { dtype: 'fp32' }));
  return { fp16: path.join(work, 'fp16'), fp32: path.join(work, 'fp32'), seconds: { fp16: fp16.seconds, fp32: fp32.seconds } };
}

const settings = (over: Partial<InferenceSettings>): InferenceSettings => InferenceSettingsSchema.parse({ ...DEFAULT_SETTINGS, pooling: PAPER_POOLING, ...over });

/** First-step logits (host loop, one token) and the tokens of a 32-token greedy answer (graph loop) of the same job. */
async function sameJob(engine: OnnxEngine, logits: Float32Array[], frames: Buffer[]): Promise<{ logits: Float32Array; tokens: number[] }> {
  logits.length = 0;
  await engine.answer({ frames, questions: QUESTION, settings: settings({ decodeLoop: 'host', maxNewTokens: 1 }) });
  const first = logits[0];
  const r = await engine.answer({ frames, questions: QUESTION, settings: settings({ maxNewTokens: 32 }) });
  const tok = engine.model.tokenizer;
  return { logits: first, tokens: Array.from(tok.encode(r.answers[0].text)) };
}

async function measureSpeed(engine: OnnxEngine, frames: Buffer[], decodeTokens: number) {
  const one = await engine.answer({ frames, questions: QUESTION, settings: settings({ maxNewTokens: 1 }) });
  const many = await engine.answer({ frames, questions: QUESTION, settings: settings({ maxNewTokens: decodeTokens + 1 }) });
  // One question: prefill and generation are one run (timings.decodeMs); the difference is the extra tokens.
  const decodeS = Math.max(1e-3, (many.timings.decodeMs - one.timings.decodeMs) / 1000);
  return {
    visionFramesPerS: frames.length / Math.max(1e-3, one.timings.visionMs / 1000),
    prefillTokensPerS: one.answers[0].promptTokens / Math.max(1e-3, one.timings.decodeMs / 1000),
    decodeTokensPerS: decodeTokens / decodeS,
    ledger: many.transferBytes,
    promptTokens: one.answers[0].promptTokens,
  };
}

function planned(fp16Dir: string, gpu: GpuInfo, promptTokens: number, check: GpuCheckPlan) {
  const model = gpuModelOf(gpu.name);
  if (!model) return { plannedGpu: undefined, planned: undefined };
  const frames = check.speedFrames;
  const plan = planJob({ model: loadPlanModel(fp16Dir), frames, pooling: PAPER_POOLING, chunk: DEFAULT_SETTINGS.prefillChunk, dtype: 'fp16', maxNewTokens: check.decodeTokens + 1, target: 'gpu' });
  const t = planJobTime(plan.model, { frames, prefixTokens: promptTokens - 5, questionTokens: [5], answerTokens: check.decodeTokens, dtype: 'fp16' }, plan.costs.chosen.transfers, GPU_SPECS[model]);
  return {
    plannedGpu: model,
    planned: {
      visionFramesPerS: frames / t.visionS,
      prefillTokensPerS: promptTokens / t.prefillS,
      decodeTokensPerS: 1000 / t.decodeMsPerToken,
      peakGpuMemMiB: plan.chosen.budget.peak / 2 ** 20,
    },
  };
}

export async function runGpuCheck(argv: string[], check: GpuCheckPlan = REAL_CHECK): Promise<GpuCheckResult> {
  const started = performance.now();
  const gpu = check.gpu ?? (await checkPrerequisites());
  const workArg = argv.indexOf('--work');
  const work = workArg >= 0 ? path.resolve(argv[workArg + 1]) : fs.mkdtempSync(path.join(os.tmpdir(), 'longsight-gpu-check-'));
  fs.mkdirSync(work, { recursive: true });
  try {
    const pkgs = await buildPackages(work, check.preset);
    const frames = await syntheticFrames(check.speedFrames);
    const cudaLogits: Float32Array[] = [];
    const cpuLogits: Float32Array[] = [];
    say(`loading the fp16 package on ${check.device === 'cuda' ? 'CUDA' : 'the CPU (rehearsal)'} and the fp32 package on the CPU…`);
    const cuda = await createOnnxEngine({ modelDir: pkgs.fp16, executionProvider: check.device, visionBatch: 16, stopIds: [], onLogits: (e) => cudaLogits.push(Float32Array.from(e.logits)) });
    const cpu = await createOnnxEngine({ modelDir: pkgs.fp32, executionProvider: 'cpu', stopIds: [], onLogits: (e) => cpuLogits.push(Float32Array.from(e.logits)) });
    try {
      say(`comparing a ${check.compareFrames}-frame job on both…`);
      const a = await sameJob(cuda, cudaLogits, frames.slice(0, check.compareFrames));
      const b = await sameJob(cpu, cpuLogits, frames.slice(0, check.compareFrames));
      say(`timing a ${check.speedFrames}-frame job…`);
      const memory = check.gpu ? { stop: async () => 0 } : sampleGpuMemory();
      const speed = await measureSpeed(cuda, frames, check.decodeTokens);
      const peakGpuMemMiB = await memory.stop();
      return {
        gpu,
        ...planned(pkgs.fp16, gpu, speed.promptTokens, check),
        convertSeconds: pkgs.seconds,
        logits: compareLogits(a.logits, b.logits),
        tokens: { cuda: a.tokens, cpu: b.tokens, common: commonPrefix(a.tokens, b.tokens) },
        measured: { visionFramesPerS: speed.visionFramesPerS, prefillTokensPerS: speed.prefillTokensPerS, decodeTokensPerS: speed.decodeTokensPerS, peakGpuMemMiB },
        ledger: speed.ledger,
        frames: check.speedFrames,
        tokensGenerated: check.decodeTokens,
        totalSeconds: (performance.now() - started) / 1000,
      };
    } finally {
      await cuda.close();
      await cpu.close();
    }
  } finally {
    if (!argv.includes('--keep') && workArg < 0) fs.rmSync(work, { recursive: true, force: true });
  }
}

if (require.main === module) {
  runGpuCheck(process.argv.slice(2)).then(
    (r) => process.stdout.write(`${formatGpuCheck(r)}\n`),
    (e) => {
      process.stderr.write(`gpu:check: ${(e as Error).message}\n`);
      process.exit(2);
    },
  );
}
