/**
 * Runs a child process asynchronously and collects its output. Always spawn, never spawnSync: the
 * local pipeline serves S3 from this same process, and a blocked event loop would starve it.
 */
import { spawn } from 'node:child_process';

export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
  timedOut: boolean;
}

export interface RunOptions {
  timeoutMs?: number;
  /** Called with each stdout chunk instead of buffering it (stdout is then empty in the result). */
  onStdout?: (chunk: Buffer) => void;
  /** Keep at most this many characters of stderr (the tail). */
  maxStderrChars?: number;
}

export function runProcess(command: string, args: readonly string[], opts: RunOptions = {}): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    const maxErr = opts.maxStderrChars ?? 64 * 1024;
    let timedOut = false;
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, opts.timeoutMs)
      : undefined;
    child.stdout.on('data', (c: Buffer) => (opts.onStdout ? opts.onStdout(c) : out.push(c)));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (c: string) => {
      err += c;
      if (err.length > 2 * maxErr) err = err.slice(-maxErr);
    });
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(new Error(`could not run ${command}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: err.length > maxErr ? err.slice(-maxErr) : err, timedOut });
    });
  });
}
