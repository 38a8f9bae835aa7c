/**
 * The AnswerEngine the worker uses: the ONNX engine in a child process (engine-child.ts), so model
 * loading and every `session.run` happen off the worker's event loop.
 *
 * Cancellation. Aborting a job (SIGTERM drain, lost ownership) rejects its `answer` at once, so the
 * worker releases the job without waiting for the runtime. onnxruntime-node cannot interrupt a run,
 * so the child stops the job at its next check between runs; a run already under way (at most one
 * vision batch, the shared-prefix prefill, or one answer of up to maxNewTokens tokens in the graph's
 * loop) finishes first and the next job waits for it. A worker that is stopping does not wait: close()
 * kills a child that is still inside a run, so the process exits at once.
 *
 * A child that dies (out of memory, a crash) fails its jobs; the next job starts a new one.
 */
import { fork, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { OutOfMemoryError, SequenceBudgetError, type AnswerEngine, type EngineInput, type EngineResult } from './engine';
import { ENGINE_OPTIONS_ENV, type EngineChildOptions, type FromChild, type SerializedError, type ToChild } from './engine-child';
import { FrameDecodeError } from './preprocess';
import { ExecutionProviderError } from './session';

/** How long close() lets an idle child release its sessions before killing it. */
const CLOSE_WAIT_MS = 5_000;

export type IsolatedEngineOptions = EngineChildOptions;

export interface IsolatedEngine extends AnswerEngine {
  /** The inference process's pid (tests check that inference left this process). */
  readonly pid: number;
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

/** The compiled .js (the image), or the .ts source through tsx's loader (tsx, ts-jest). */
function childEntry(): { script: string; execArgv: string[] } {
  const js = path.join(__dirname, 'engine-child.js');
  if (fs.existsSync(js)) return { script: js, execArgv: [] };
  const loader = path.join(path.dirname(require.resolve('tsx/package.json')), 'dist', 'loader.mjs');
  return { script: path.join(__dirname, 'engine-child.ts'), execArgv: ['--import', `file://${loader}`] };
}

interface Pending {
  input: EngineInput;
  resolve: (r: EngineResult) => void;
  reject: (e: unknown) => void;
  cleanup: () => void;
}

/** One child process with the model loaded, and the jobs sent to it. */
class EngineChild {
  readonly pending = new Map<number, Pending>();
  /** Jobs sent and not yet finished by the child, aborted ones included: non-empty means a run may be under way. */
  readonly outstanding = new Set<number>();
  readonly exited: Promise<void>;
  dead: Error | undefined;

  private constructor(readonly proc: ChildProcess) {
    this.exited = new Promise((resolve) => proc.once('exit', () => resolve()));
  }

  static async start(opts: IsolatedEngineOptions): Promise<{ child: EngineChild; modelId: string }> {
    const entry = childEntry();
    const proc = fork(entry.script, [], {
      execArgv: entry.execArgv,
      serialization: 'advanced',
      env: { ...process.env, [ENGINE_OPTIONS_ENV]: JSON.stringify(opts) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const child = new EngineChild(proc);
    const loading: { message?: (m: FromChild) => void; exit?: (code: number | null, signal: string | null) => void; error?: (e: Error) => void } = {};
    const modelId = await new Promise<string>((resolve, reject) => {
      loading.message = (m) => {
        if (m.type === 'ready') resolve(m.modelId);
        if (m.type === 'load-failed') reject(deserializeError(m.error));
      };
      loading.exit = (code, signal) => reject(new Error(`the inference process exited (${signal ?? `code ${code}`}) while loading the model`));
      loading.error = reject;
      proc.on('message', loading.message);
      proc.on('exit', loading.exit);
      proc.on('error', loading.error);
    })
      .catch((e) => {
        proc.kill('SIGKILL');
        throw e;
      })
      .finally(() => {
        proc.off('message', loading.message!);
        proc.off('exit', loading.exit!);
        proc.off('error', loading.error!);
      });
    proc.on('message', (m: FromChild) => child.onMessage(m));
    proc.on('error', (e) => child.fail(new Error(`the inference process failed: ${e.message}`)));
    proc.on('exit', (code, signal) => {
      // SIGKILL is what the kernel's OOM killer sends: let the worker's fallback policy see it as such.
      const why = `the inference process exited (${signal ?? `code ${code}`})`;
      child.fail(signal === 'SIGKILL' ? new OutOfMemoryError(`${why}: killed, most likely out of memory`) : new Error(why));
    });
    return { child, modelId };
  }

  private onMessage(m: FromChild): void {
    if (m.type === 'ready' || m.type === 'load-failed') return;
    if (m.type === 'result' || m.type === 'failed') this.outstanding.delete(m.id);
    const p = this.pending.get(m.id);
    if (!p) return; // an aborted job's late messages
    if (m.type === 'progress') p.input.onProgress?.(m.event);
    else if (m.type === 'token') p.input.onToken?.(m.questionId, m.text);
    else {
      this.pending.delete(m.id);
      p.cleanup();
      if (m.type === 'result') p.resolve(m.result);
      else p.reject(deserializeError(m.error));
    }
  }

  fail(e: Error): void {
    this.dead ??= e;
    for (const p of this.pending.values()) {
      p.cleanup();
      p.reject(e);
    }
    this.pending.clear();
  }

  send(m: ToChild): void {
    if (m.type === 'answer') this.outstanding.add(m.id);
    if (!this.dead && this.proc.connected) this.proc.send(m);
  }
}

export async function createIsolatedEngine(opts: IsolatedEngineOptions): Promise<IsolatedEngine> {
  let { child, modelId } = await EngineChild.start(opts);
  let nextId = 1;
  let closed = false;

  const current = async (): Promise<EngineChild> => {
    if (child.dead && !closed) ({ child, modelId } = await EngineChild.start(opts));
    return child;
  };

  return {
    get modelId() {
      return modelId;
    },
    get pid() {
      return child.proc.pid ?? -1;
    },
    async answer(input) {
      if (closed) throw new Error('the engine is closed');
      const { signal, onToken, onProgress, ...rest } = input;
      void onProgress;
      signal?.throwIfAborted();
      const c = await current();
      const id = nextId++;
      return new Promise<EngineResult>((resolve, reject) => {
        const onAbort = () => {
          if (!c.pending.delete(id)) return;
          c.send({ type: 'abort', id, reason: String((signal!.reason as Error)?.message ?? signal!.reason) });
          reject(signal!.reason);
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        c.pending.set(id, { input, resolve, reject, cleanup: () => signal?.removeEventListener('abort', onAbort) });
        c.send({ type: 'answer', id, input: { ...rest, stream: Boolean(onToken) } });
      });
    },
    async close() {
      closed = true;
      const c = child;
      if (c.dead) return;
      // Idle: let the child release its sessions. Inside a run (a job still going, or an aborted one
      // the child has not finished): nothing will read it, so end it now.
      if (c.outstanding.size === 0) {
        c.send({ type: 'close' });
        const timer = setTimeout(() => c.proc.kill('SIGKILL'), CLOSE_WAIT_MS);
        await c.exited;
        clearTimeout(timer);
      } else {
        c.proc.kill('SIGKILL');
        await c.exited;
      }
    },
  };
}
