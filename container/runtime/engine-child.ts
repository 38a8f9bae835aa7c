/**
 * The inference process: loads the model package and answers jobs in a child process of the worker,
 * because onnxruntime-node's session constructor and `session.run` block the JS thread they are
 * called on (a prefill, or a 512-token answer in the graph's loop, takes seconds). In the child, the
 * worker's event loop — heartbeats, the health file, SIGTERM handling, metrics — stays live, and a
 * stopping worker can end a run nobody will read by killing the process (a worker thread cannot be
 * stopped inside native code, and Node waits for it at exit).
 *
 * Protocol (IPC with structured clone; isolated-engine.ts is the other side):
 *   parent → child: {type:'answer', id, input}, {type:'abort', id, reason}, {type:'close'}
 *   child → parent: {type:'ready', modelId} | {type:'load-failed', error}
 *                   {type:'progress', id, event} | {type:'token', id, questionId, text}
 *                   {type:'result', id, result} | {type:'failed', id, error}
 */
import type { EngineInput, EngineResult } from './engine';
import { createOnnxEngine, type OnnxEngine, type OnnxEngineOptions } from './onnx-engine';

/** Passed in the environment: the engine's options (JSON). */
export const ENGINE_OPTIONS_ENV = 'LONGSIGHT_ENGINE_OPTIONS';

export type EngineChildOptions = Omit<OnnxEngineOptions, 'onProgress' | 'onLogits'>;

export type ChildJobInput = Omit<EngineInput, 'signal' | 'onToken' | 'onProgress'> & { stream: boolean };

export type ToChild = { type: 'answer'; id: number; input: ChildJobInput } | { type: 'abort'; id: number; reason: string } | { type: 'close' };

export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  /** Own enumerable properties worth keeping (SequenceBudgetError's sizes, FrameDecodeError's index). */
  props: Record<string, unknown>;
}

export type FromChild =
  | { type: 'ready'; modelId: string }
  | { type: 'load-failed'; error: SerializedError }
  | { type: 'progress'; id: number; event: Parameters<NonNullable<EngineInput['onProgress']>>[0] }
  | { type: 'token'; id: number; questionId: string; text: string }
  | { type: 'result'; id: number; result: EngineResult }
  | { type: 'failed'; id: number; error: SerializedError };

export function serializeError(e: unknown): SerializedError {
  if (!(e instanceof Error)) return { name: 'Error', message: String(e), props: {} };
  const props: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e)) if (['string', 'number', 'boolean'].includes(typeof v)) props[k] = v;
  return { name: e.name, message: e.message, stack: e.stack, props };
}

async function serve(options: EngineChildOptions): Promise<void> {
  const post = (m: FromChild) => process.send!(m);
  // The parent owns this process's lifetime: signals meant for the worker (Ctrl-C reaches the whole
  // process group) must not end a run the parent will release or finish; a vanished parent ends it.
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => undefined);
  process.on('disconnect', () => process.exit(0));
  let engine: OnnxEngine;
  try {
    engine = await createOnnxEngine(options);
  } catch (e) {
    post({ type: 'load-failed', error: serializeError(e) });
    return;
  }
  const running = new Map<number, AbortController>();
  process.on('message', (m: ToChild) => {
    if (m.type === 'abort') {
      running.get(m.id)?.abort(Object.assign(new Error(m.reason), { name: 'AbortError' }));
      return;
    }
    if (m.type === 'close') {
      void engine.close().finally(() => process.exit(0));
      return;
    }
    const ac = new AbortController();
    running.set(m.id, ac);
    engine
      .answer({
        ...m.input,
        frames: m.input.frames.map((f) => Buffer.from(f.buffer, f.byteOffset, f.byteLength)),
        signal: ac.signal,
        onProgress: (event) => post({ type: 'progress', id: m.id, event }),
        onToken: m.input.stream ? (questionId, text) => post({ type: 'token', id: m.id, questionId, text }) : undefined,
      })
      .then(
        (result) => post({ type: 'result', id: m.id, result }),
        (e) => post({ type: 'failed', id: m.id, error: serializeError(e) }),
      )
      .finally(() => running.delete(m.id));
  });
  post({ type: 'ready', modelId: engine.modelId });
}

if (require.main === module) {
  const raw = process.env[ENGINE_OPTIONS_ENV];
  if (!raw || !process.send) {
    process.stderr.write(`engine-child: start it through createIsolatedEngine (needs an IPC channel and ${ENGINE_OPTIONS_ENV})\n`);
    process.exit(2);
  }
  void serve(JSON.parse(raw) as EngineChildOptions);
}
