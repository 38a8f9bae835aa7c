/**
 * The reconciler Lambda, run by an EventBridge schedule (lib/stack/reconciler-function.ts): one
 * reconciliation pass (reconciler.ts) per invocation. Configuration from the environment, validated
 * once per cold start; errors name the variable.
 */
import { createAwsClients } from '../../lib/aws-clients';
import { ENV, jsonFromEnv, METRICS_NAMESPACE, parseOrThrow, ReconcilerRuntimeConfigSchema } from '../../lib/contracts';
import { createLogger } from '../../lib/log';
import { JobStore } from '../../container/worker/job-store';
import { createEmfMetrics } from '../../container/worker/metrics';
import { reconcileOnce, type PassResult, type ReconcilerDeps, type ReconcilerSettings } from './reconciler';

export function reconcilerDepsFromEnv(env: NodeJS.ProcessEnv = process.env): ReconcilerDeps {
  const json = jsonFromEnv(env, ENV.reconcilerConfig, 'the reconciler needs its thresholds (JSON)');
  const c = parseOrThrow(ReconcilerRuntimeConfigSchema, json, ENV.reconcilerConfig);
  const need = (name: string): string => {
    const v = env[name];
    if (!v) throw new Error(`${name} is not set`);
    return v;
  };
  const jobsTable = need(ENV.jobsTable);
  const clients = createAwsClients(env);
  const settings: ReconcilerSettings = {
    staleAfterMs: c.staleAfterSeconds * 1000,
    extractionGiveUpMs: c.extractionGiveUpSeconds * 1000,
    maxAttempts: c.maxAttempts,
    maxJobsPerPass: c.maxJobsPerPass,
    maxDeadLettersPerPass: c.maxDeadLettersPerPass,
    deadLetterHoldSeconds: c.deadLetterHoldSeconds,
  };
  return {
    ...clients,
    // The reconciler writes no answers: the answers table is not needed.
    store: new JobStore(clients.ddb, { jobsTable, answersTable: '' }, c.leaseSeconds * 1000),
    jobsTable,
    queueUrl: need(ENV.queueUrl),
    dlqUrl: env[ENV.dlqUrl] || undefined,
    settings,
    log: createLogger({ service: 'longsight-reconciler' }),
    metrics: createEmfMetrics(METRICS_NAMESPACE, c.metricDimensions, true),
  };
}

let deps: ReconcilerDeps | undefined;

/** The Lambda entry point. */
export async function handler(): Promise<Omit<PassResult, 'resent' | 'failed'> & { resent: number; failed: number }> {
  deps ??= reconcilerDepsFromEnv();
  const r = await reconcileOnce(deps);
  return { ...r, resent: r.resent.length, failed: r.failed.length };
}
