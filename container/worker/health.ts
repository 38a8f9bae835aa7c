/**
 * The ECS health check command (`node /app/dist/container/worker/health.js`): exit 0 when the
 * worker's health file was rewritten within health.maxAgeSeconds, 1 otherwise, with one line saying
 * why. Reads the same LONGSIGHT_WORKER_CONFIG as the worker, so file and age agree.
 */
import { readFileSync, statSync } from 'node:fs';
import { ENV } from '../../lib/contracts/runtime-env';
import { parseWorkerConfig } from '../../lib/contracts/worker-config';
import type { HealthRecord } from './health-file';

export function checkHealth(file: string, maxAgeSeconds: number, now = Date.now()): { ok: boolean; message: string } {
  let record: HealthRecord;
  try {
    statSync(file);
    record = JSON.parse(readFileSync(file, 'utf8')) as HealthRecord;
  } catch (e) {
    return { ok: false, message: `unhealthy: cannot read ${file}: ${(e as Error).message}` };
  }
  const ageSeconds = (now - Date.parse(record.time)) / 1000;
  if (!Number.isFinite(ageSeconds)) return { ok: false, message: `unhealthy: ${file} has no valid time` };
  if (ageSeconds > maxAgeSeconds) return { ok: false, message: `unhealthy: last heartbeat ${ageSeconds.toFixed(0)} s ago (limit ${maxAgeSeconds} s), state ${record.state}` };
  return { ok: true, message: `healthy: ${record.state}, ${record.jobsInFlight} job(s) in flight, heartbeat ${ageSeconds.toFixed(1)} s ago` };
}

if (require.main === module) {
  try {
    const raw = process.env[ENV.workerConfig];
    const config = parseWorkerConfig(raw ? JSON.parse(raw) : {});
    const r = checkHealth(config.health.file, config.health.maxAgeSeconds);
    process.stdout.write(r.message + '\n');
    process.exit(r.ok ? 0 : 1);
  } catch (e) {
    process.stdout.write(`unhealthy: ${(e as Error).message}\n`);
    process.exit(1);
  }
}
