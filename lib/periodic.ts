/** A background pass run at start and then every `everyMs` after the previous one ends, never overlapping. */
export interface Periodic {
  /** Stops the timer; resolves once a pass under way has finished. */
  stop(): Promise<void>;
}

/** Errors of a pass go to `onError` (the next pass retries); the timer never keeps the process alive. */
export function startPeriodic(pass: () => Promise<unknown>, everyMs: number, onError: (e: unknown) => void): Periodic {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();
  const tick = () => {
    running = pass()
      .catch(onError)
      .finally(() => {
        if (stopped) return;
        timer = setTimeout(tick, everyMs);
        timer.unref();
      });
  };
  tick();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
