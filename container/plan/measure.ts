/**
 * Runs container/plan/measure-decoder.ts in a fresh child process (one per measurement, so each
 * peak RSS is that job's alone) and returns its result.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import type { MeasureRequest, MeasureResult } from './measure-decoder';

export type { MeasureRequest, MeasureResult } from './measure-decoder';

const ENTRY = path.join(__dirname, 'measure-decoder.ts');

export function measureDecoderJob(req: MeasureRequest, opts: { timeoutMs?: number } = {}): Promise<MeasureResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', ENTRY, JSON.stringify(req)], {
      cwd: path.resolve(__dirname, '../..'),
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`measurement timed out after ${opts.timeoutMs} ms`));
        }, opts.timeoutMs)
      : undefined;
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(new Error(`could not start the measurement child: ${e.message}`));
    });
    child.on('close', (code) => {
      if (timer) clearTimeout(timer);
      if (code !== 0) return reject(new Error(`measurement child exited with ${code}: ${err.trim().slice(-2000)}`));
      const line = out.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as MeasureResult);
      } catch {
        reject(new Error(`measurement child printed no result: ${out.slice(-500)} ${err.slice(-500)}`));
      }
    });
  });
}
