/**
 * What `gpu:check` reads from nvidia-smi: the GPU's name and memory, once, and the memory in use,
 * sampled while the check runs (its peak is the job's GPU memory beside the planner's prediction).
 */
import { execFile } from 'node:child_process';
import type { GpuModel } from '../../lib/contracts';

export interface GpuInfo {
  name: string;
  memoryTotalMiB: number;
  driver: string;
}

/** Parses `nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader,nounits` (first GPU). */
export function parseGpuQuery(csv: string): GpuInfo {
  const line = csv.split('\n').map((l) => l.trim()).find((l) => l.length > 0);
  if (!line) throw new Error('nvidia-smi listed no GPU');
  const [name, total, driver] = line.split(',').map((s) => s.trim());
  const memoryTotalMiB = Number(total);
  if (!name || !Number.isFinite(memoryTotalMiB) || !driver) throw new Error(`unexpected nvidia-smi output: "${line}"`);
  return { name, memoryTotalMiB, driver };
}

/** The planner's GPU model for an nvidia-smi name, or undefined when the planner has no figures for it. */
export function gpuModelOf(name: string): GpuModel | undefined {
  const n = name.toUpperCase();
  if (/\bH100\b/.test(n)) return 'H100-80GB';
  if (/\bA100\b/.test(n)) return 'A100-40GB';
  if (/\bL40S\b/.test(n)) return 'L40S';
  if (/\bL4\b/.test(n)) return 'L4';
  if (/\bA10G\b/.test(n)) return 'A10G';
  if (/\bT4\b/.test(n)) return 'T4';
  return undefined;
}

function run(args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('nvidia-smi', args, { timeout: 10_000 }, (err, stdout) => (err ? reject(new Error(`nvidia-smi ${args.join(' ')} failed: ${err.message}`)) : resolve(stdout))),
  );
}

export async function queryGpu(): Promise<GpuInfo> {
  return parseGpuQuery(await run(['--query-gpu=name,memory.total,driver_version', '--format=csv,noheader,nounits', '-i', '0']));
}

/** Samples GPU 0's memory in use every `everyMs` until stopped; resolves the peak (MiB). */
export function sampleGpuMemory(everyMs = 200): { stop(): Promise<number> } {
  let peak = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        const used = Number((await run(['--query-gpu=memory.used', '--format=csv,noheader,nounits', '-i', '0'])).trim().split('\n')[0]);
        if (Number.isFinite(used)) peak = Math.max(peak, used);
      } catch {
        // a missed sample is not a failure
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return peak;
    },
  };
}
