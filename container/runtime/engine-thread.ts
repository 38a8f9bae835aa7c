/**
 * The inference thread: loads the model package and answers jobs inside a `worker_threads` worker,
 * because onnxruntime-node's session constructor and `session.run` block the JS thread they are
 * called on (a prefill or a 512-token in-graph generation can take seconds). In the thread, the
 * worker's event loop — heartbeats, the health file, SIGTERM handling, metrics — stays live.
 *
 * Protocol (structured clone; see threaded-engine.ts for the other side):
 *   parent → thread: {type:'answer', id, input}, {type:'abort', id, reason}, {type:'close'}
 *   thread → parent: {type:'ready', modelId} | {type:'load-failed', error}
 *                    {type:'progress', id, event} | {type:'token', id, questionId, text}
 *                    {type:'result', id, result} | {type:'failed', id, error}
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { EngineInput } from './engine';
import { createOnnxEngine, type OnnxEngine, type OnnxEngineOptions } from './onnx-engine';

export const ENGINE_THREAD_MARK = 'longsight-engine-thread';

export interface EngineThreadData {
  mark: typeof ENGINE_THREAD_MARK;
  options: Omit<OnnxEngineOptions, 'onProgress' | 'onLogits'>;
}

export type ThreadJobInput = Omit<EngineInput, 'signal' | 'onToken' | 'onProgress'> & { stream: boolean };

export type ToThread = { type: 'answer'; id: number; input: ThreadJobInput } | { type: 'abort'; id: number; reason: string } | { type: 'close' };

export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  /** Own enumerable properties worth keeping (SequenceBudgetError's sizes, FrameDecodeError's index). */
  props: Record<string, unknown>;
}

export type FromThread =
  | { type: 'ready'; modelId: string }
  | { type: 'load-failed'; error: SerializedError }
  | { type: 'progress'; id: number; event: Parameters<NonNullable<EngineInput['onProgress']>>[0] }
  | { type: 'token'; id: number; questionId: string; text: string }
  | { type: 'result'; id: number; result: Awaited<ReturnType<OnnxEngine['answer']>> }
  | { type: 'failed'; id: number; error: SerializedError };

export function serializeError(e: unknown): SerializedError {
  if (!(e instanceof Error)) return { name: 'Error', message: String(e), props: {} };
  const props: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e)) if (['string', 'number', 'boolean'].includes(typeof v)) props[k] = v;
  return { name: e.name, message: e.message, stack: e.stack, props };
}

async function serve(data: EngineThreadData): Promise<void> {
  const port = parentPort!;
  const post = (m: FromThread) => port.postMessage(m);
  let engine: OnnxEngine;
  try {
    engine = await createOnnxEngine(data.options);
  } catch (e) {
    post({ type: 'load-failed', error: serializeError(e) });
    return;
  }
  const running = new Map<number, AbortController>();
  port.on('message', (m: ToThread) => {
    if (m.type === 'abort') {
      running.get(m.id)?.abort(Object.assign(new Error(m.reason), { name: 'AbortError' }));
      return;
    }
    if (m.type === 'close') {
      void engine.close().finally(() => port.close());
      return;
    }
    const ac = new AbortController();
    running.set(m.id, ac);
    engine
      .answer({
        ...m.input,
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

if (!isMainThread && (workerData as EngineThreadData | undefined)?.mark === ENGINE_THREAD_MARK) {
  void serve(workerData as EngineThreadData);
}
