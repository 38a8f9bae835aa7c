/** Retry with capped exponential backoff and jitter, for writes that must not be lost. */
import { setTimeout as sleep } from 'node:timers/promises';

export interface RetryOptions {
  /** Give up after this long (ms) since the first attempt. */
  deadlineMs: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  retryable: (e: unknown) => boolean;
  onRetry?: (e: unknown, attempt: number, delayMs: number) => void;
  signal?: AbortSignal;
}

export async function retryUntil<T>(fn: () => Promise<T>, opts: RetryOptions): Promise<T> {
  const start = Date.now();
  const base = opts.baseDelayMs ?? 100;
  const cap = opts.maxDelayMs ?? 5000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      const elapsed = Date.now() - start;
      if (!opts.retryable(e) || elapsed >= opts.deadlineMs || opts.signal?.aborted) throw e;
      const delay = Math.min(cap, base * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
      opts.onRetry?.(e, attempt, delay);
      await sleep(Math.min(delay, Math.max(0, opts.deadlineMs - elapsed)));
    }
  }
}
