/**
 * onnxruntime-node session creation: CPU execution provider by default, CUDA when configured.
 * CUDA needs onnxruntime-node's CUDA provider libraries (installed with
 * `--onnxruntime-node-install=cuda12`, or ONNXRUNTIME_NODE_INSTALL_CUDA) next to the native
 * binding, and a visible GPU with CUDA 12 / cuDNN 9; we check what we can up front and name
 * what is missing, instead of letting onnxruntime fall back silently or fail cryptically.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { OutOfMemoryError } from './engine';
import type { RunScope, TransferLedger } from './transfer-ledger';

export type ExecutionProviderName = 'cpu' | 'cuda';

export interface SessionConfig {
  executionProvider: ExecutionProviderName;
  /** Intra-op threads (0 = onnxruntime's default, one per physical core). */
  threads: number;
  /** CUDA device ordinal. */
  deviceId?: number;
}

export class ExecutionProviderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExecutionProviderError';
  }
}

/** Directory of onnxruntime-node's native binding (where provider libraries must live). */
export function nativeBindingDir(): string {
  const pkg = path.dirname(require.resolve('onnxruntime-node/package.json'));
  return path.join(pkg, 'bin', 'napi-v6', process.platform, process.arch);
}

/** Throws ExecutionProviderError naming what is missing for the CUDA EP; returns quietly when it looks usable. */
export function checkCudaAvailable(): void {
  const backends = ort.listSupportedBackends?.() ?? [];
  if (!backends.some((b) => b.name === 'cuda')) {
    throw new ExecutionProviderError(
      `CUDA execution provider requested, but this onnxruntime-node build (${process.platform}/${process.arch}) has no CUDA support ` +
        `(supported: ${backends.map((b) => b.name).join(', ') || 'unknown'}). Use executionProvider "cpu" or run on linux/x64 with a GPU.`,
    );
  }
  if (process.platform === 'linux') {
    const dir = nativeBindingDir();
    const missing = ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so'].filter(
      (f) => !fs.existsSync(path.join(dir, f)),
    );
    if (missing.length > 0) {
      throw new ExecutionProviderError(
        `CUDA execution provider requested, but ${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} missing from ${dir}: ` +
          'install onnxruntime-node with its CUDA binaries (`npm install onnxruntime-node --onnxruntime-node-install=cuda12`) ' +
          'on a machine with CUDA 12 and cuDNN 9, or use executionProvider "cpu".',
      );
    }
  }
}

export function sessionOptions(config: SessionConfig): ort.InferenceSession.SessionOptions {
  const providers: ort.InferenceSession.ExecutionProviderConfig[] =
    config.executionProvider === 'cuda' ? [{ name: 'cuda', deviceId: config.deviceId ?? 0 }] : ['cpu'];
  return {
    executionProviders: providers,
    graphOptimizationLevel: 'all',
    ...(config.threads > 0 ? { intraOpNumThreads: config.threads, interOpNumThreads: 1 } : {}),
  };
}

export async function createSession(modelPath: string, config: SessionConfig): Promise<ort.InferenceSession> {
  if (!fs.existsSync(modelPath)) throw new Error(`model file not found: ${modelPath}`);
  if (config.executionProvider === 'cuda') checkCudaAvailable();
  try {
    return await ort.InferenceSession.create(modelPath, sessionOptions(config));
  } catch (err) {
    const message = (err as Error).message ?? String(err);
    if (config.executionProvider === 'cuda' && /cuda|cudnn|libcu/i.test(message)) {
      throw new ExecutionProviderError(`CUDA execution provider failed to start for ${path.basename(modelPath)}: ${message}`);
    }
    throw asOutOfMemory(err) ?? err;
  }
}

/** onnxruntime reports allocation failures as plain errors; recognise them so the worker can fall back. */
export function asOutOfMemory(err: unknown): OutOfMemoryError | undefined {
  const message = err instanceof Error ? err.message : String(err);
  if (/out of memory|bad_alloc|Failed to allocate|allocation failed|CUDNN_STATUS_ALLOC_FAILED|CUBLAS_STATUS_ALLOC_FAILED/i.test(message)) {
    return new OutOfMemoryError(`onnxruntime could not allocate memory: ${message}`);
  }
  return undefined;
}

/** Where a run's crossing bytes are counted (see transfer-ledger.ts). */
export interface RunAccounting {
  ledger: TransferLedger;
  scope: RunScope;
}

/**
 * session.run with allocation failures mapped to OutOfMemoryError. `fetches` names the outputs to
 * bring back (onnxruntime copies only those out of the runtime: the rest, e.g. a KV cache, stays);
 * every feed and every fetched output is counted in the ledger.
 */
export async function runSession(
  session: ort.InferenceSession,
  feeds: Record<string, ort.Tensor>,
  fetches?: readonly string[],
  accounting?: RunAccounting,
): Promise<Record<string, ort.Tensor>> {
  let out: ort.InferenceSession.OnnxValueMapType;
  try {
    out = fetches ? await session.run(feeds, [...fetches]) : await session.run(feeds);
  } catch (err) {
    throw asOutOfMemory(err) ?? err;
  }
  const tensors = out as Record<string, ort.Tensor>;
  accounting?.ledger.addRun(feeds, tensors, accounting.scope);
  return tensors;
}
