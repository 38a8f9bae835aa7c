/**
 * @jest-environment ./test/convert/support/onnx-environment.js
 */
/**
 * A running job's progress and a finished job's cost: the reporter's bounded rate, the share done
 * and ETA from stage weights, the planner's weights; then a worker in this process on the real
 * engine and embedded servers, its progress records read from DynamoDB while the job runs and its
 * cost on the DONE item.
 */
import { getEventListeners } from 'node:events';
import { join } from 'node:path';
import type { JobProgress } from '../../lib/contracts';
import { provisionLongsight } from '../../container/local/embedded-aws';
import { createProgressReporter, CPU_TIME_SPEC, etaSeconds, jobFraction, stageWeights } from '../../container/worker/job-progress';
import { loadFrames } from '../../container/worker/frame-loader';
import { JobStore } from '../../container/worker/job-store';
import { jobCost } from '../../container/worker/process-job';
import { resolvePricing } from '../../container/worker/pricing';
import { loadPlanModel } from '../../container/plan/model-dims';
import { GPU_SPECS, planJobTime } from '../../container/plan/time';
import { createOnnxEngine } from '../../container/runtime/onnx-engine';
import type { AnswerEngine } from '../../container/runtime/engine';
import { parseWorkerConfig } from '../../lib/contracts';
import { startLocalAws, type LocalAws } from '../support/local-aws';
import { inProcessWorker, jobItem, slowed, waitFor, waitStatus } from './support/harness';
import { seedJob } from './support/jobs';
import { tinyModelDir } from './support/tiny-model';

jest.setTimeout(300_000);

describe('share done and ETA', () => {
  const w = { frames: 0, vision: 2, prefill: 1, decode: 1 };

  it('counts the stages before in full and the current one in part', () => {
    expect(jobFraction(w, 'frames', 8, 16)).toBe(0);
    expect(jobFraction(w, 'vision', 1, 2)).toBe(0.25);
    expect(jobFraction(w, 'prefill', 1, 1)).toBe(0.75);
    expect(jobFraction(w, 'decode', 1, 2)).toBe(0.875);
    expect(jobFraction(w, 'decode', 2, 2)).toBe(1);
  });

  it('scales the time spent by what is left; says nothing before 2%', () => {
    expect(etaSeconds(0.25, 10_000)).toBe(30);
    expect(etaSeconds(0.5, 4000)).toBe(4);
    expect(etaSeconds(0.01, 10_000)).toBeUndefined();
  });

  it("weights the stages by the planner's phase times for this job on this device", () => {
    const model = loadPlanModel(join(__dirname, '../../container/plan/models/llava-onevision-qwen2-7b-ov.config.json'));
    const question = 'What happens in this video?'; // 27 characters: 7 tokens by the estimate, + 9 of the template
    const job = { frames: 256, pooling: { groupSize: 4, strideHigh: 2, strideLow: 8 }, questions: [question], maxNewTokens: 256 };
    const onA10G = stageWeights(job, model, GPU_SPECS.A10G);
    // 256 frames at K=4 (2,8): 64×196 + 192×16 + 1 = 15,617 visual tokens, + 4 prompt tokens before the question.
    const planned = planJobTime(model, { frames: 256, prefixTokens: 15_621, questionTokens: [16], answerTokens: 256, dtype: 'fp32' }, { total: 0, perGeneratedToken: 0, byKind: {} as never }, GPU_SPECS.A10G);
    expect(onA10G).toEqual({ frames: 0, vision: planned.visionS, prefill: planned.prefillS, decode: planned.decodeS });
    // A GPU multiplies ~100× more values a second than it streams bytes; a CPU ~8×: decode (streaming
    // every weight per token) weighs more beside vision (multiplying) on the GPU than on the CPU.
    const onCpu = stageWeights(job, model, CPU_TIME_SPEC);
    expect(onA10G.decode / onA10G.vision).toBeGreaterThan(3 * (onCpu.decode / onCpu.vision));
    expect(stageWeights(job, undefined)).toEqual({ frames: 0, vision: 1, prefill: 1, decode: 1 });
  });
});

describe('the reporter writes at a bounded rate, the newest state last', () => {
  function recorder(writeMs = 0) {
    const writes: { at: number; p: JobProgress }[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const write = async (p: JobProgress) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      writes.push({ at: Date.now(), p });
      await new Promise((r) => setTimeout(r, writeMs));
      inFlight--;
    };
    return { writes, write, maxInFlight: () => maxInFlight };
  }

  it('the first report at once, a burst as one trailing write of its last state, never two writes in flight', async () => {
    const rec = recorder(30);
    const r = createProgressReporter({ weights: { frames: 0, vision: 1, prefill: 1, decode: 1 }, write: rec.write, minIntervalMs: 100, startedAt: Date.now() - 1000 });
    for (let i = 1; i <= 50; i++) r.report('vision', i, 50);
    expect(rec.writes.map((w) => w.p.done)).toEqual([1]);
    await waitFor('the trailing write', async () => rec.writes.length === 2, 10_000, 10);
    expect(rec.writes[1].p).toMatchObject({ stage: 'vision', done: 50, total: 50, fraction: 0.333 });
    expect(rec.writes[1].p.etaSeconds).toBeGreaterThan(0);
    expect(rec.writes[1].at - rec.writes[0].at).toBeGreaterThanOrEqual(95);
    r.report('decode', 1, 1);
    await waitFor('the third write', async () => rec.writes.length === 3, 10_000, 10);
    expect(rec.writes[2].at - rec.writes[1].at).toBeGreaterThanOrEqual(95);
    expect(rec.writes[2].p).toMatchObject({ stage: 'decode', fraction: 1, etaSeconds: 0 });
    expect(rec.maxInFlight()).toBe(1);
    await r.stop();
  });

  it('stop() drops a pending write and ignores later reports', async () => {
    const rec = recorder();
    const r = createProgressReporter({ weights: { frames: 0, vision: 1, prefill: 1, decode: 1 }, write: rec.write, minIntervalMs: 200, startedAt: Date.now() });
    r.report('frames', 1, 4);
    r.report('frames', 4, 4); // due at +200 ms
    await r.stop();
    r.report('vision', 1, 4);
    await new Promise((res) => setTimeout(res, 400));
    expect(rec.writes.map((w) => w.p.done)).toEqual([1]);
  });
});

describe('a job on a worker', () => {
  let local: LocalAws;
  let engine: AnswerEngine;
  beforeAll(async () => {
    local = await startLocalAws({ visibilityTimeoutSeconds: 30, maxReceiveCount: 3 });
    engine = await createOnnxEngine({ modelDir: await tinyModelDir(), executionProvider: 'cpu', threads: 1 });
  });
  afterAll(async () => {
    await engine?.close();
    await local?.stop();
  });

  it('records its stages while RUNNING (bounded rate, in order), then DONE without progress, with its cost and frame span', async () => {
    const r = await provisionLongsight(local.clients, { queue: 'progress-test' }, { visibilityTimeoutSeconds: 30, maxReceiveCount: 3 });
    const writes: { at: number; p: JobProgress; ok: boolean }[] = [];
    const real = JobStore.prototype.progress;
    const spy = jest.spyOn(JobStore.prototype, 'progress').mockImplementation(async function (this: JobStore, jobId, token, p) {
      const at = Date.now();
      const ok = await real.call(this, jobId, token, p);
      writes.push({ at, p, ok });
      return ok;
    });
    const pricing = { instanceType: 'g5.xlarge', usdPerHour: { 'g5.xlarge': 1.006, 'g6.xlarge': 0.8 } };
    // The engine waits 3 s before it starts: the frames stage is on the item meanwhile.
    const w = inProcessWorker(local.clients, r, slowed(engine, 3000), { visibilityTimeoutSeconds: 30, heartbeatSeconds: 5, progressIntervalSeconds: 0.1, pricing });
    try {
      const job = await seedJob(local.clients, r, { frames: 16, questions: ['What is shown?', 'Which colour?'] });
      const running = await waitFor('the frames stage on the RUNNING item', async () => {
        const it = await jobItem(local.clients, r, job.jobId);
        return it?.status === 'RUNNING' && it.progress?.stage === 'frames' && it.progress.done === 16 ? it : undefined;
      }, 120_000, 50);
      expect(running.progress).toMatchObject({ stage: 'frames', done: 16, total: 16, fraction: 0 });
      const done = await waitStatus(local.clients, r, job.jobId, ['DONE', 'FAILED']);
      expect(done.status).toBe('DONE');
      expect(done.progress).toBeUndefined();
      // The worker's seconds at the instance's price (one GPU of a g5.xlarge).
      expect(done.cost).toEqual({ seconds: done.timings.totalMs! / 1000, device: 'cpu', instanceType: 'g5.xlarge', usdPerHour: 1.006, usd: Math.round((done.timings.totalMs! / 3_600_000) * 1.006 * 1e6) / 1e6 });
      expect(done.frameSpan).toEqual({ firstSeconds: 0, lastSeconds: 7.5 });
      // Writes: the first report at once, at most one per 100 ms after, stages in order, the share done
      // never going back (a write still pending when the answers are in is dropped: DONE follows).
      expect(writes[0].p).toMatchObject({ stage: 'frames', done: 1, total: 16 });
      expect(writes.length).toBeGreaterThanOrEqual(2);
      expect(writes.every((x) => x.ok)).toBe(true);
      for (let i = 1; i < writes.length; i++) {
        expect(writes[i].at - writes[i - 1].at).toBeGreaterThanOrEqual(95);
        expect(['frames', 'vision', 'prefill', 'decode'].indexOf(writes[i].p.stage)).toBeGreaterThanOrEqual(['frames', 'vision', 'prefill', 'decode'].indexOf(writes[i - 1].p.stage));
        expect(writes[i].p.fraction).toBeGreaterThanOrEqual(writes[i - 1].p.fraction);
      }
    } finally {
      spy.mockRestore();
      await w.stop();
    }
  });

  it("fetches 16 frames at once with one abort listener on the job's signal (the SDK adds one per request: Node warned at 11)", async () => {
    const r = await provisionLongsight(local.clients, { queue: 'listeners-test' }, { visibilityTimeoutSeconds: 30, maxReceiveCount: 3 });
    const job = await seedJob(local.clients, r, { frames: 16 });
    const ac = new AbortController();
    let most = 0;
    let sampling = true;
    const sample = () => {
      most = Math.max(most, getEventListeners(ac.signal, 'abort').length);
      if (sampling) setImmediate(sample);
    };
    sample();
    const loaded = await loadFrames(local.clients.s3, job.message, 16, ac.signal);
    sampling = false;
    expect(loaded.frames).toHaveLength(16);
    expect(most).toBe(1);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });
});

describe('pricing', () => {
  it('the instance type from the config, the file the instance wrote, or the only priced type; a GPU of a multi-GPU instance', () => {
    const cfg = (pricing: object, ep: 'cpu' | 'cuda' = 'cuda') => parseWorkerConfig({ pricing, model: { executionProvider: ep } });
    expect(resolvePricing(cfg({ instanceType: 'g5.xlarge', usdPerHour: { 'g5.xlarge': 0.45 } }))).toEqual({ device: 'gpu', instanceType: 'g5.xlarge', usdPerHour: 0.45 });
    expect(resolvePricing(cfg({ usdPerHour: { 'g6e.xlarge': 1.861 } }))).toEqual({ device: 'gpu', instanceType: 'g6e.xlarge', usdPerHour: 1.861 });
    expect(resolvePricing(cfg({ instanceType: 'p4d.24xlarge', usdPerHour: { 'p4d.24xlarge': 32 } }))).toEqual({ device: 'gpu', instanceType: 'p4d.24xlarge', usdPerHour: 4 });
    expect(resolvePricing(cfg({ usdPerHour: { 'g5.xlarge': 1, 'g6.xlarge': 0.8 } }))).toEqual({ device: 'gpu' });
    const file = join(require('node:os').tmpdir(), `instance-type-${process.pid}`);
    require('node:fs').writeFileSync(file, 'g6.xlarge\n');
    expect(resolvePricing(cfg({ instanceTypeFile: file, usdPerHour: { 'g5.xlarge': 1, 'g6.xlarge': 0.8 } }))).toEqual({ device: 'gpu', instanceType: 'g6.xlarge', usdPerHour: 0.8 });
    expect(resolvePricing(cfg({ instanceType: 'local' }, 'cpu'))).toEqual({ device: 'cpu', instanceType: 'local' });
    expect(jobCost(3600, { device: 'gpu', instanceType: 'g5.xlarge', usdPerHour: 1.006 })).toEqual({ seconds: 3600, device: 'gpu', instanceType: 'g5.xlarge', usdPerHour: 1.006, usd: 1.006 });
  });
});
