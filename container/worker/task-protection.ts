/**
 * ECS task scale-in protection, set by the worker on itself through the ECS agent's endpoint
 * (`$ECS_AGENT_URI/task-protection/v1/state`, which ECS injects into every task's containers).
 * While at least one job runs the task is protected, so when the backlog falls and the service
 * lowers its task count, ECS stops idle workers and never a busy one mid-job. The protection
 * expires on its own shortly after the job lease would (a worker that died does not stay
 * protected) and is renewed on every heartbeat; it is cleared as soon as the worker is idle.
 * Without ECS_AGENT_URI (locally, in tests without the agent) this does nothing.
 */
import type { Logger } from '../../lib/log';

export interface TaskProtectionOptions {
  /** The agent's base URI (ECS_AGENT_URI); absent: a no-op. */
  agentUri?: string;
  /** The job lease: protection lasts this long past each renewal, rounded up to whole minutes. */
  leaseMs: number;
  /** Renewal period while busy (the heartbeat period). */
  renewEveryMs: number;
  log: Logger;
}

export interface TaskProtection {
  jobStarted(): void;
  jobEnded(): void;
  /** Clears the protection (if set) and stops renewing; resolves when the agent has answered. */
  stop(): Promise<void>;
}

/** ECS accepts 1 to 2880 minutes. */
export function protectionMinutes(leaseMs: number): number {
  return Math.min(2880, Math.max(1, Math.ceil(leaseMs / 60_000)));
}

export function startTaskProtection(o: TaskProtectionOptions): TaskProtection {
  if (!o.agentUri) return { jobStarted() {}, jobEnded() {}, stop: async () => undefined };
  const url = `${o.agentUri.replace(/\/+$/, '')}/task-protection/v1/state`;
  const minutes = protectionMinutes(o.leaseMs);
  let running = 0;
  let protectedNow = false;
  let timer: NodeJS.Timeout | undefined;
  // One call at a time, in order: an "off" must never overtake the "on" before it.
  let chain: Promise<void> = Promise.resolve();
  const put = (enabled: boolean) => {
    chain = chain.then(() => setProtection(url, enabled, minutes, o.log));
    return chain;
  };
  const renew = () => {
    if (running > 0) void put(true);
  };
  return {
    jobStarted() {
      running++;
      if (running === 1) {
        protectedNow = true;
        void put(true);
        timer = setInterval(renew, o.renewEveryMs);
        timer.unref();
      }
    },
    jobEnded() {
      running = Math.max(0, running - 1);
      if (running === 0 && protectedNow) {
        protectedNow = false;
        clearInterval(timer);
        void put(false);
      }
    },
    async stop() {
      clearInterval(timer);
      if (protectedNow) {
        protectedNow = false;
        running = 0;
        await put(false);
      }
      await chain;
    },
  };
}

/** One PUT to the agent; failures (network, the agent's `failure`/`error` answers) are logged, never thrown. */
async function setProtection(url: string, enabled: boolean, minutes: number, log: Logger): Promise<void> {
  try {
    const res = await fetch(url, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(enabled ? { ProtectionEnabled: true, ExpiresInMinutes: minutes } : { ProtectionEnabled: false }),
      signal: AbortSignal.timeout(10_000),
    });
    const body = (await res.json().catch(() => ({}))) as { protection?: { ExpirationDate?: string }; failure?: { Reason?: string; Detail?: string }; error?: { Code?: string; Message?: string } };
    if (!res.ok || body.failure || body.error || !body.protection) {
      const why = body.failure ? `${body.failure.Reason}${body.failure.Detail ? `: ${body.failure.Detail}` : ''}` : body.error ? `${body.error.Code}: ${body.error.Message}` : `HTTP ${res.status}`;
      log.warn('ECS task protection not updated', { enabled, why });
      return;
    }
    log.debug('ECS task protection updated', { enabled, expires: body.protection.ExpirationDate });
  } catch (e) {
    log.warn('ECS task protection not updated', { enabled, error: e });
  }
}
