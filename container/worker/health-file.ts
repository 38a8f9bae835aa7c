/**
 * The worker's liveness record: a small JSON file rewritten on a timer while the process is
 * responsive (the event loop runs). The ECS health check (health.ts) reads its age.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface HealthState {
  state: 'starting' | 'loading-model' | 'ready' | 'stopping';
  jobsInFlight: number;
  jobsDone: number;
  jobsFailed: number;
}

export interface HealthRecord extends HealthState {
  time: string;
  pid: number;
}

export function writeHealth(file: string, state: HealthState): void {
  const record: HealthRecord = { time: new Date().toISOString(), pid: process.pid, ...state };
  mkdirSync(dirname(file), { recursive: true });
  // Write then rename, so the checker never reads a half-written file.
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(record));
  renameSync(tmp, file);
}

export function startHealthReporter(file: string, intervalMs: number, state: () => HealthState): { stop(): void } {
  const write = () => {
    try {
      writeHealth(file, state());
    } catch {
      // A full disk must not take the worker down; the check will then fail on age.
    }
  };
  write();
  const timer = setInterval(write, intervalMs);
  timer.unref();
  return {
    stop: () => {
      clearInterval(timer);
      write();
    },
  };
}
