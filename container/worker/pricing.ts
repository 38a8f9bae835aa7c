/**
 * Where the worker runs and what an hour of it costs, resolved once at start for each job's `cost`
 * record: the instance type from the configuration, else from the file the instance's user data
 * wrote (the stack: the container cannot reach the instance metadata, on purpose), else the only
 * type in the price table; the price of one of its GPUs from that table.
 */
import { existsSync, readFileSync } from 'node:fs';
import { usdPerGpuHour, type WorkerConfig } from '../../lib/contracts';
import type { WorkerPricing } from './process-job';

const INSTANCE_TYPE = /^[a-z0-9][a-z0-9.-]{1,40}$/;

function readInstanceType(file: string | undefined): string | undefined {
  if (!file || !existsSync(file)) return undefined;
  const v = readFileSync(file, 'utf8').trim();
  return INSTANCE_TYPE.test(v) ? v : undefined;
}

export function resolvePricing(config: WorkerConfig): WorkerPricing {
  const device = config.model.executionProvider === 'cuda' ? 'gpu' : 'cpu';
  const priced = Object.keys(config.pricing.usdPerHour);
  const instanceType = config.pricing.instanceType ?? readInstanceType(config.pricing.instanceTypeFile) ?? (priced.length === 1 ? priced[0] : undefined);
  const usdPerHour = instanceType ? usdPerGpuHour(instanceType, config.pricing.usdPerHour) : undefined;
  return { device, ...(instanceType ? { instanceType } : {}), ...(usdPerHour !== undefined ? { usdPerHour } : {}) };
}
