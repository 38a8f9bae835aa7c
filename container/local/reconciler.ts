/**
 * The stack's scheduled reconciler (lambda/reconcile/reconciler.ts), run in-process by the local
 * pipeline on a short period with thresholds scaled to the local queue's visibility timeout.
 */
import type { AwsClients } from '../../lib/aws-clients';
import type { Logger } from '../../lib/log';
import type { Periodic } from '../../lib/periodic';
import { startReconciler } from '../../lambda/reconcile/reconciler';
import { JobStore } from '../worker/job-store';
import { createEmfMetrics } from '../worker/metrics';
import type { Resources } from './targets';

/** Passes every 10 s; a job unchanged for 3 visibility timeouts has lost its message. */
export function startLocalReconciler(clients: AwsClients, r: Resources, visibilityTimeoutSeconds: number, runLog: Logger): Periodic {
  const log = runLog.child({ service: 'longsight-reconciler' });
  const everyMs = 10_000;
  return startReconciler(
    {
      ...clients,
      store: new JobStore(clients.ddb, { jobsTable: r.jobsTable, answersTable: r.answersTable }, visibilityTimeoutSeconds * 1000),
      jobsTable: r.jobsTable,
      queueUrl: r.queueUrl,
      dlqUrl: r.dlqUrl,
      settings: {
        staleAfterMs: 3 * visibilityTimeoutSeconds * 1000,
        // The local pipeline retries an extraction itself, three times within seconds.
        extractionGiveUpMs: 5 * 60_000,
        maxAttempts: 3,
        maxJobsPerPass: 1000,
        maxDeadLettersPerPass: 1000,
        deadLetterHoldSeconds: everyMs / 1000 + 30,
      },
      log,
      metrics: createEmfMetrics('Longsight', {}, false),
    },
    everyMs,
  );
}
