/**
 * The worker as a library: poll the queue, run each job (process-job.ts), and on stop (SIGTERM)
 * take no new jobs, let the current ones finish until the stop deadline, then release them.
 * main.ts wires it to the process; tests run it in-process or as a child process.
 */
import type { AwsClients } from '../../lib/aws-clients';
import type { WorkerConfig } from '../../lib/contracts';
import type { Logger } from '../../lib/log';
import type { AnswerEngine } from '../runtime/engine';
import { timingOf } from './config';
import { startDeadLetterSweeper } from './dead-letters';
import { JobAbandonedError } from './errors';
import { JobStore } from './job-store';
import type { Metrics } from './metrics';
import { resolvePricing } from './pricing';
import { processMessage, type JobDeps, type JobOutcome, type WorkerPricing } from './process-job';
import { startPoller } from './queue-poller';
import { startTaskProtection } from './task-protection';

export interface WorkerOptions {
  clients: AwsClients;
  engine: AnswerEngine;
  config: WorkerConfig;
  queueUrl: string;
  /** The job queue's DLQ; with it (and config.deadLetterSweepSeconds > 0) the worker reconciles dead-lettered jobs. */
  dlqUrl?: string;
  jobsTable: string;
  answersTable: string;
  workerId: string;
  modelId?: string;
  log: Logger;
  metrics: Metrics;
  onOutcome?: (outcome: JobOutcome) => void;
  /** ECS_AGENT_URI: with it, the task protects itself from scale-in while a job runs (task-protection.ts). */
  ecsAgentUri?: string;
  /** The model's dimensions and the device, for the progress estimate (absent: stages weigh alike). */
  timeModel?: JobDeps['timeModel'];
  /** Where the worker runs and its price (default: resolved from config.pricing). */
  pricing?: WorkerPricing;
}

export interface WorkerStats {
  done: number;
  failed: number;
  retried: number;
  duplicates: number;
  /** Deliveries that found another live owner (or raced every claim) and handed the message back. */
  handedBack: number;
  released: number;
}

export interface RunningWorker {
  /** Resolves once stopped and every job finished or was released. */
  readonly done: Promise<void>;
  readonly stats: WorkerStats;
  readonly inFlight: number;
  /** Stop taking jobs; jobs still running when the stop timeout nears are released. */
  stop(reason?: string): Promise<void>;
}

export function startWorker(o: WorkerOptions): RunningWorker {
  const { heartbeatMs, leaseMs } = timingOf(o.config);
  const store = new JobStore(o.clients.ddb, { jobsTable: o.jobsTable, answersTable: o.answersTable }, leaseMs);
  const stopJobs = new AbortController();
  const stats: WorkerStats = { done: 0, failed: 0, retried: 0, duplicates: 0, handedBack: 0, released: 0 };
  const protection = startTaskProtection({ agentUri: o.ecsAgentUri, leaseMs, renewEveryMs: heartbeatMs, log: o.log });
  const deps = {
    s3: o.clients.s3,
    sqs: o.clients.sqs,
    store,
    engine: o.engine,
    config: o.config,
    queueUrl: o.queueUrl,
    workerId: o.workerId,
    heartbeatMs,
    modelId: o.modelId,
    log: o.log,
    metrics: o.metrics,
    stopSignal: stopJobs.signal,
    timeModel: o.timeModel,
    pricing: o.pricing ?? resolvePricing(o.config),
  };
  const poller = startPoller({
    sqs: o.clients.sqs,
    queueUrl: o.queueUrl,
    concurrency: o.config.jobsPerWorker,
    waitTimeSeconds: o.config.waitTimeSeconds,
    visibilityTimeoutSeconds: o.config.visibilityTimeoutSeconds,
    log: o.log,
    handle: async (m) => {
      protection.jobStarted();
      let outcome: JobOutcome;
      try {
        outcome = await processMessage(deps, m);
      } finally {
        protection.jobEnded();
      }
      if (outcome === 'done') stats.done++;
      else if (outcome === 'failed' || outcome === 'invalid') stats.failed++;
      else if (outcome === 'retry') stats.retried++;
      else if (outcome === 'duplicate' || outcome === 'lost') stats.duplicates++;
      else if (outcome === 'handed-back') stats.handedBack++;
      else if (outcome === 'released') stats.released++;
      o.onOutcome?.(outcome);
    },
  });
  // Low-frequency and idempotent: every worker may run it; the conditional write lets one win per job.
  const sweeper =
    o.dlqUrl && o.config.deadLetterSweepSeconds > 0
      ? startDeadLetterSweeper({ sqs: o.clients.sqs, dlqUrl: o.dlqUrl, store, log: o.log, metrics: o.metrics }, o.config.deadLetterSweepSeconds * 1000)
      : undefined;
  const done = poller.done.then(() => Promise.all([sweeper?.stop(), protection.stop()])).then(() => undefined);
  let stopping: Promise<void> | undefined;
  return {
    done,
    stats,
    get inFlight() {
      return poller.inFlight;
    },
    stop(reason = 'stop requested') {
      stopping ??= (async () => {
        o.log.info('worker stopping: no new jobs', { reason, inFlight: poller.inFlight, stopTimeoutSeconds: o.config.stopTimeoutSeconds });
        poller.stop();
        // Keep a margin before ECS's SIGKILL for releasing the jobs (DynamoDB + SQS calls).
        const budgetMs = o.config.stopTimeoutSeconds * 1000;
        const marginMs = Math.min(5000, budgetMs * 0.25);
        const timer = setTimeout(() => stopJobs.abort(new JobAbandonedError('stopping', `${reason}: stop timeout reached`)), Math.max(0, budgetMs - marginMs));
        await done;
        clearTimeout(timer);
        o.log.info('worker stopped', { ...stats });
      })();
      return stopping;
    },
  };
}
