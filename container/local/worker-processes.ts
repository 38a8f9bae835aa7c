/**
 * The real worker, as child processes of `longsight run` (one per --workers), exactly the program
 * the container runs (container/worker/main), configured through the same environment variables
 * the stack sets. Their JSON logs go to a log file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface WorkerProcess {
  id: string;
  proc: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** How to run a TypeScript or compiled entry point of this package as a Node process. */
export function nodeCommand(entryWithoutExt: string): string[] {
  const js = `${entryWithoutExt}.js`;
  if (existsSync(js)) return [js];
  const loader = pathToFileURL(join(require.resolve('tsx/package.json'), '..', 'dist', 'loader.mjs')).href;
  return ['--import', loader, `${entryWithoutExt}.ts`];
}

export function workerEntry(): string {
  return join(__dirname, '..', 'worker', 'main');
}

/** Starts `count` worker processes; their output goes to `logTo` (a stream, or a file appended to: returned as `log`). */
export function spawnWorkers(count: number, env: Record<string, string>, logTo: string | Writable): { workers: WorkerProcess[]; log: Writable } {
  const log = typeof logTo === 'string' ? createWriteStream(logTo, { flags: 'a' }) : logTo;
  const workers: WorkerProcess[] = [];
  for (let i = 1; i <= count; i++) {
    const id = `local-worker-${i}`;
    const proc = spawn(process.execPath, nodeCommand(workerEntry()), {
      env: { ...process.env, ...env, LONGSIGHT_WORKER_ID: id },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc.stdout!.pipe(log, { end: false });
    proc.stderr!.pipe(log, { end: false });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
    workers.push({ id, proc, exited });
  }
  return { workers, log };
}

/** SIGTERM (the worker finishes or releases its job and exits 0), then SIGKILL after the grace period. */
export async function stopWorkers(workers: WorkerProcess[], graceMs: number): Promise<void> {
  await Promise.all(
    workers.map(async (w) => {
      if (w.proc.exitCode !== null || w.proc.signalCode !== null) return;
      w.proc.kill('SIGTERM');
      const timer = setTimeout(() => w.proc.kill('SIGKILL'), graceMs);
      await w.exited;
      clearTimeout(timer);
    }),
  );
}
