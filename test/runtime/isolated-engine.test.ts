/**
 * @jest-environment ./test/convert/support/onnx-environment.js
 */
/**
 * The engine in its inference process (the worker's production engine): same answers and ledger as
 * the in-process engine; the calling thread's event loop keeps running during a long session run;
 * an aborted job is rejected at once while the thread finishes its run, and the next job then runs;
 * the failure classes the worker's policy tells apart cross the process boundary; a bad package fails
 * the load with its message; close() ends a child still inside a run at once; a dead child is replaced.
 */
import sharp from 'sharp';
import { DEFAULT_SETTINGS, InferenceSettingsSchema, questionId, STOCK_POOLING, type InferenceSettings, type Question } from '../../lib/contracts';
import { SequenceBudgetError } from '../../container/runtime/engine';
import { createOnnxEngine } from '../../container/runtime/onnx-engine';
import { FrameDecodeError } from '../../container/runtime/preprocess';
import { createIsolatedEngine, type IsolatedEngine } from '../../container/runtime/isolated-engine';
import { tinyPackage } from './fixtures';

jest.setTimeout(180_000);

const q = (text: string): Question => ({ id: questionId(text), text });
const QUESTIONS = [q('What happens in this video?'), q('How many people are there?')];
const settings = (over: Partial<InferenceSettings> = {}) => InferenceSettingsSchema.parse({ ...DEFAULT_SETTINGS, maxNewTokens: 6, ...over });

async function frames(n: number): Promise<Buffer[]> {
  return Promise.all(Array.from({ length: n }, (_, f) => sharp({ create: { width: 384, height: 384, channels: 3, background: { r: 40 * f, g: 90, b: 200 - 30 * f } } }).png().toBuffer()));
}

/** Largest gap between ticks of a 50 ms timer on this thread while `work` runs. */
async function maxTimerGap<T>(work: Promise<T>): Promise<{ value: T; gapMs: number }> {
  let last = performance.now();
  let gap = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    gap = Math.max(gap, now - last);
    last = now;
  }, 50);
  try {
    const value = await work;
    return { value, gapMs: Math.max(gap, performance.now() - last) };
  } finally {
    clearInterval(timer);
  }
}

describe('isolated engine (wide checkpoint: ~10 ms per generated token on one CPU thread)', () => {
  let engine: IsolatedEngine;
  let video: Buffer[];
  let packageDir: string;

  beforeAll(async () => {
    ({ packageDir } = await tinyPackage({ preset: 'wide' }));
    engine = await createIsolatedEngine({ modelDir: packageDir, threads: 1, stopIds: [] });
    video = await frames(2);
  });
  afterAll(() => engine?.close());

  it('runs in another process and answers exactly as the in-process engine, ledger included', async () => {
    expect(engine.pid).not.toBe(process.pid);
    const local = await createOnnxEngine({ modelDir: packageDir, threads: 1, stopIds: [] });
    try {
      const a = await local.answer({ frames: video, questions: QUESTIONS, settings: settings() });
      const progress: string[] = [];
      const b = await engine.answer({ frames: video, questions: QUESTIONS, settings: settings(), onProgress: (e) => progress.push(e.stage) });
      expect(b.answers.map((x) => x.text)).toEqual(a.answers.map((x) => x.text));
      expect(b.transferBytes).toEqual(a.transferBytes);
      expect(progress).toEqual(['vision', 'vision', 'prefill', 'decode', 'decode']); // one vision run per pooled side (14×14, then 4×4)
      expect(engine.modelId).toBe(local.modelId);
    } finally {
      await local.close();
    }
  });

  it('keeps this thread\'s event loop live during a long generation; an abort rejects at once; the next job runs after', async () => {
    const ac = new AbortController();
    const long = engine.answer({ frames: video.slice(0, 1), questions: QUESTIONS.slice(0, 1), settings: settings({ maxNewTokens: 400 }), signal: ac.signal });
    const started = performance.now();
    let abortedAt = 0;
    const aborter = setTimeout(() => {
      abortedAt = performance.now();
      ac.abort(new Error('stop now'));
    }, 1500);
    const { value: rejection, gapMs } = await maxTimerGap(long.then(() => undefined, (e: Error) => e));
    clearTimeout(aborter);
    const rejectedAfterMs = performance.now() - abortedAt;
    expect(rejection?.message).toBe('stop now');
    // In-process, a single run of 400 tokens would block this thread for seconds.
    expect(gapMs).toBeLessThan(1000);
    expect(rejectedAfterMs).toBeLessThan(1000);
    expect(performance.now() - started).toBeLessThan(4000 + 1000);
    // The child finishes its run (onnxruntime cannot interrupt it), drops the aborted job, then answers the next one.
    const next = await engine.answer({ frames: video, questions: QUESTIONS.slice(0, 1), settings: settings({ maxNewTokens: 3 }) });
    expect(next.answers[0].generatedTokens).toBe(3);
  });

  it('brings the failure classes the worker tells apart across the process boundary', async () => {
    const budget = await engine.answer({ frames: video, questions: QUESTIONS, settings: settings({ maxSequenceTokens: 256, pooling: STOCK_POOLING }) }).catch((e) => e); // 2 × 196 visual tokens
    expect(budget).toBeInstanceOf(SequenceBudgetError);
    expect(budget.budget).toBe(256);
    const frame = await engine.answer({ frames: [video[0], Buffer.from('not an image')], questions: QUESTIONS, settings: settings() }).catch((e) => e);
    expect(frame).toBeInstanceOf(FrameDecodeError);
    expect(frame.frameIndex).toBe(1);
    expect(frame.message).toMatch(/frame 1 could not be decoded/);
  });

  it('fails the load with the package error, and leaves no process behind', async () => {
    await expect(createIsolatedEngine({ modelDir: '/nonexistent/package' })).rejects.toThrow(/no longsight-model\.json/);
  });

  it('close() ends a child that is inside a run at once; a child that died is replaced on the next job', async () => {
    const other = await createIsolatedEngine({ modelDir: packageDir, threads: 1, stopIds: [] });
    const ac = new AbortController();
    const long = other.answer({ frames: video.slice(0, 1), questions: QUESTIONS.slice(0, 1), settings: settings({ maxNewTokens: 3000 }), signal: ac.signal }).catch((e) => e);
    await new Promise((res) => setTimeout(res, 1000));
    ac.abort(new Error('worker stopping'));
    expect((await long).message).toBe('worker stopping');
    const t0 = performance.now();
    await other.close();
    expect(performance.now() - t0).toBeLessThan(2000); // not the ~30 s the run had left

    const pid = engine.pid;
    process.kill(pid, 'SIGKILL');
    await new Promise((res) => setTimeout(res, 300));
    const again = await engine.answer({ frames: video, questions: QUESTIONS.slice(0, 1), settings: settings({ maxNewTokens: 2 }) });
    expect(again.answers[0].generatedTokens).toBe(2);
    expect(engine.pid).not.toBe(pid);
  });
});
