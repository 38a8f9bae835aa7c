/** Spawns worker-child.ts as a real Node process (through tsx), with its logs collected. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { WorkerConfigInput } from '../../../lib/contracts';
import type { LongsightResources } from '../../../container/local/embedded-aws';

export const TSX_LOADER = pathToFileURL(join(require.resolve('tsx/package.json'), '..', 'dist', 'loader.mjs')).href;

export interface WorkerChild {
  proc: ChildProcess;
  logs: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves when a log line matches. */
  waitForLog(re: RegExp, timeoutMs?: number): Promise<string>;
}

export function spawnWorker(env: Record<string, string>, r: LongsightResources, modelDir: string, config: WorkerConfigInput, extra: Record<string, string> = {}): WorkerChild {
  const proc = spawn(process.execPath, ['--import', TSX_LOADER, join(__dirname, 'worker-child.ts')], {
    env: {
      ...process.env,
      ...env,
      LONGSIGHT_LOG_LEVEL: 'info',
      LONGSIGHT_QUEUE_URL: r.queueUrl,
      LONGSIGHT_JOBS_TABLE: r.jobsTable,
      LONGSIGHT_ANSWERS_TABLE: r.answersTable,
      // With LONGSIGHT_MODEL_URI in `extra` the worker fetches the package from S3 instead of a local dir.
      LONGSIGHT_WORKER_CONFIG: JSON.stringify({ ...config, model: { executionProvider: 'cpu', threads: 1, ...(extra.LONGSIGHT_MODEL_URI ? {} : { dir: modelDir }), ...config.model } }),
      ...extra,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  const onData = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line) continue;
      logs.push(line);
      for (const w of [...waiters]) if (w.re.test(line)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  return {
    proc,
    logs,
    exited,
    waitForLog(re, timeoutMs = 60_000) {
      const hit = logs.find((l) => re.test(l));
      if (hit) return Promise.resolve(hit);
      return new Promise<string>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no log line matching ${re} within ${timeoutMs} ms; last lines:\n${logs.slice(-10).join('\n')}`)), timeoutMs);
        waiters.push({ re, resolve: (l) => { clearTimeout(t); resolve(l); } });
      });
    },
  };
}
