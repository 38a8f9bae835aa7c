/**
 * The AnswerEngine the worker uses: the ONNX engine running in a `worker_threads` worker
 * (engine-thread.ts), so model loading and every `session.run` happen off the worker's event loop.
 *
 * Aborting a job (SIGTERM drain, lost ownership) rejects its `answer` at once: the worker releases
 * the job without waiting for the runtime. The thread stops the job at its next check between
 * session runs; a run already under way (at most one vision batch, one prefill, or one answer of up
 * to maxNewTokens tokens in the graph's loop) finishes first, because onnxruntime-node offers no way
 * to interrupt it. A stopping worker does not wait for it either: `process.exit` ends the thread.
 * Jobs queue behind that run on the thread, so the next job starts once it is over.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { OutOfMemoryError, SequenceBudgetError, type AnswerEngine, type EngineInput, type EngineResult } from './engine';
import { ENGINE_THREAD_MARK, type EngineThreadData, type FromThread, type SerializedError, type ToThread } from './engine-thread';
import type { OnnxEngineOptions } from './onnx-engine';
import { FrameDecodeError } from './preprocess';
import { ExecutionProviderError } from './session';

/** How long close() waits for the thread to release its sessions. */
const CLOSE_WAIT_MS = 5_000;

export type ThreadedEngineOptions = Omit<OnnxEngineOptions, 'onProgress' | 'onLogits'>;

export interface ThreadedEngine extends AnswerEngine {
  /** The inference thread's id (tests check that inference left the main thread). */
  readonly threadId: number;
}

/** Rebuilds the error classes the worker's failure policy tells apart (errors.ts), keeping name and message. */
export function deserializeError(s: SerializedError): Error {
  const p = s.props;
  let e: Error;
  if (s.name === 'SequenceBudgetError' && typeof p.sequenceTokens === 'number' && typeof p.budget === 'number') e = new SequenceBudgetError(p.sequenceTokens, p.budget);
  else if (s.name === 'OutOfMemoryError') e = new OutOfMemoryError(s.message);
  else if (s.name === 'ExecutionProviderError') e = new ExecutionProviderError(s.message);
  else if (s.name === 'FrameDecodeError' && typeof p.frameIndex === 'number') e = Object.assign(new FrameDecodeError(p.frameIndex, ''), { message: s.message });
  else e = Object.assign(new Error(s.message), { name: s.name }, p);
  if (s.stack) e.stack = s.stack;
  return e;
}

/** How to start the thread: the compiled .js directly, or the .ts source through tsx's CommonJS hook (tsx, ts-jest). */
function threadEntry(): { script: string; eval: boolean } {
  const js = path.join(__dirname, 'engine-thread.js');
  if (fs.existsSync(js)) return { script: js, eval: false };
  const ts = path.join(__dirname, 'engine-thread.ts');
  return { script: `require(${JSON.stringify(require.resolve('tsx/cjs/api'))}).register(); require(${JSON.stringify(ts)});`, eval: true };
}

interface Pending {
  input: EngineInput;
  resolve: (r: EngineResult) => void;
  reject: (e: unknown) => void;
  cleanup: () => void;
}

export async function createThreadedEngine(opts: ThreadedEngineOptions): Promise<ThreadedEngine> {
  const entry = threadEntry();
  const data: EngineThreadData = { mark: ENGINE_THREAD_MARK, options: opts };
  const worker = new Worker(entry.script, { eval: entry.eval, workerData: data });
  const pending = new Map<number, Pending>();
  let nextId = 1;
  let dead: Error | undefined;

  const modelId = await new Promise<string>((resolve, reject) => {
    const onMessage = (m: FromThread) => {
      if (m.type === 'ready') resolve(m.modelId);
      if (m.type === 'load-failed') reject(deserializeError(m.error));
    };
    worker.on('message', onMessage);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the inference thread exited (code ${code}) while loading the model`)));
  }).catch(async (e) => {
    await worker.terminate();
    throw e;
  });
  worker.removeAllListeners();

  const fail = (e: Error) => {
    dead ??= e;
    for (const p of pending.values()) {
      p.cleanup();
      p.reject(e);
    }
    pending.clear();
  };
  worker.on('error', (e) => fail(new Error(`the inference thread failed: ${e.message}`)));
  worker.on('exit', (code) => fail(new Error(`the inference thread exited (code ${code})`)));
  worker.on('message', (m: FromThread) => {
    if (m.type === 'ready' || m.type === 'load-failed') return;
    const p = pending.get(m.id);
    if (!p) return; // an aborted job's late messages
    if (m.type === 'progress') p.input.onProgress?.(m.event);
    else if (m.type === 'token') p.input.onToken?.(m.questionId, m.text);
    else {
      pending.delete(m.id);
      p.cleanup();
      if (m.type === 'result') p.resolve(m.result);
      else p.reject(deserializeError(m.error));
    }
  });

  const post = (m: ToThread) => worker.postMessage(m);
  return {
    modelId,
    threadId: worker.threadId,
    answer(input) {
      if (dead) return Promise.reject(dead);
      const { signal, onToken, onProgress, ...rest } = input;
      void onProgress;
      if (signal?.aborted) return Promise.reject(signal.reason);
      const id = nextId++;
      return new Promise<EngineResult>((resolve, reject) => {
        const onAbort = () => {
          if (!pending.delete(id)) return;
          post({ type: 'abort', id, reason: String((signal!.reason as Error)?.message ?? signal!.reason) });
          reject(signal!.reason);
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        pending.set(id, { input, resolve, reject, cleanup: () => signal?.removeEventListener('abort', onAbort) });
        post({ type: 'answer', id, input: { ...rest, stream: Boolean(onToken) } });
      });
    },
    async close() {
      if (dead) return;
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      post({ type: 'close' });
      // The thread releases its sessions and exits. One still inside a run cannot be interrupted
      // (worker.terminate() waits for native code too): stop waiting after a while; the process's
      // exit ends the thread.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS).unref()))]);
      clearTimeout(timer);
    },
  };
}
