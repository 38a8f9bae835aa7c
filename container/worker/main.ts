/**
 * The worker process (the container's entrypoint): read the configuration, fetch the model package
 * into the local cache, load it into onnxruntime, poll the queue until SIGTERM, then stop within the
 * stop timeout and exit 0. Startup errors exit 1 with one structured log line naming the problem.
 */
import { createAwsClients } from '../../lib/aws-clients';
import type { WorkerConfig } from '../../lib/contracts';
import { createLogger, type Logger } from '../../lib/log';
import type { AnswerEngine } from '../runtime/engine';
import { loadWorkerEnvironment } from './config';
import { startHealthReporter, type HealthState } from './health-file';
import { createEmfMetrics } from './metrics';
import { ensureModelPackage } from './model-cache';
import { startWorker } from './worker';
import { resolvePricing } from './pricing';
import { CPU_TIME_SPEC } from './job-progress';
import type { WorkerPricing } from './process-job';
import { GPU_INSTANCE_TYPES } from '../../lib/contracts';
import { loadPlanModel } from '../plan/model-dims';
import { GPU_SPECS } from '../plan/time';

export type EngineFactory = (modelDir: string, config: WorkerConfig, log: Logger) => Promise<AnswerEngine>;

/**
 * The production engine: the ONNX runtime on the configured execution provider, in a child process
 * (onnxruntime-node's load and runs block the thread they run on; the heartbeat, health file and
 * SIGTERM handling live on this one, and a stopping worker can end a run by ending the process).
 */
export const onnxEngineFactory: EngineFactory = async (modelDir, config) => {
  // Loaded lazily so `health.js` and config errors do not pay for onnxruntime's native module.
  const { createIsolatedEngine } = await import('../runtime/isolated-engine');
  return createIsolatedEngine({ modelDir, executionProvider: config.model.executionProvider, threads: config.model.threads });
};

/** The model's dimensions and the device's figures, for the progress estimate; undefined when the package cannot be described. */
function timeModelFor(modelDir: string, pricing: WorkerPricing, log: Logger) {
  try {
    const gpu = pricing.instanceType ? GPU_INSTANCE_TYPES[pricing.instanceType]?.gpu : undefined;
    // An unknown instance's GPU: the ratios of a mid-range one (A10G) are as good a guess as any.
    return { model: loadPlanModel(modelDir), spec: pricing.device === 'gpu' ? GPU_SPECS[gpu ?? 'A10G'] : CPU_TIME_SPEC };
  } catch (e) {
    log.warn('no time model for progress estimates: stages weigh alike', { error: (e as Error).message });
    return undefined;
  }
}

export interface WorkerProcessOptions {
  env?: NodeJS.ProcessEnv;
  createEngine?: EngineFactory;
}

/** Runs the worker until SIGTERM/SIGINT; resolves with the process exit code. */
export async function runWorkerProcess(opts: WorkerProcessOptions = {}): Promise<number> {
  const env = opts.env ?? process.env;
  let log = createLogger({ service: 'longsight-worker' });
  let stopRequested: string | undefined;
  let onStop: ((reason: string) => void) | undefined;
  const signalHandler = (signal: NodeJS.Signals) => {
    if (stopRequested && signal === 'SIGINT') {
      log.warn('second SIGINT: exiting now');
      process.exit(130);
    }
    stopRequested = signal;
    onStop?.(signal);
  };
  process.on('SIGTERM', signalHandler);
  process.on('SIGINT', signalHandler);

  const health: HealthState = { state: 'starting', jobsInFlight: 0, jobsDone: 0, jobsFailed: 0 };
  let reporter: { stop(): void } | undefined;
  let engine: AnswerEngine | undefined;
  try {
    const we = loadWorkerEnvironment(env);
    log = log.child({ workerId: we.workerId });
    reporter = startHealthReporter(we.config.health.file, we.config.health.intervalSeconds * 1000, () => health);
    const clients = createAwsClients(env);

    health.state = 'loading-model';
    let modelDir = we.config.model.dir;
    if (!modelDir) {
      const r = await ensureModelPackage(clients.s3, we.modelUri!, we.cacheDir, log);
      modelDir = r.dir;
    }
    if (stopRequested) {
      log.info('stopped before taking any job', { signal: stopRequested });
      return 0;
    }
    engine = await (opts.createEngine ?? onnxEngineFactory)(modelDir, we.config, log);
    log.info('model loaded', { modelDir, modelId: we.modelId ?? engine.modelId, executionProvider: we.config.model.executionProvider });

    const pricing = resolvePricing(we.config);
    log.info('pricing', { ...pricing });
    const metrics = createEmfMetrics(we.config.metrics.namespace, we.config.metrics.dimensions, we.config.metrics.enabled);
    const worker = startWorker({
      clients,
      engine,
      config: we.config,
      queueUrl: we.queueUrl,
      dlqUrl: we.dlqUrl,
      jobsTable: we.jobsTable,
      answersTable: we.answersTable,
      workerId: we.workerId,
      modelId: we.modelId,
      ecsAgentUri: env.ECS_AGENT_URI || undefined,
      timeModel: timeModelFor(modelDir, pricing, log),
      pricing,
      log,
      metrics,
      onOutcome: (o) => {
        if (o === 'done') health.jobsDone++;
        if (o === 'failed' || o === 'invalid') health.jobsFailed++;
      },
    });
    health.state = 'ready';
    const inFlightTimer = setInterval(() => (health.jobsInFlight = worker.inFlight), 500);
    inFlightTimer.unref();
    log.info('worker ready: polling the queue', { queueUrl: we.queueUrl, jobsPerWorker: we.config.jobsPerWorker });
    onStop = (reason) => {
      health.state = 'stopping';
      void worker.stop(reason);
    };
    if (stopRequested) onStop(stopRequested);
    await worker.done;
    clearInterval(inFlightTimer);
    return 0;
  } catch (e) {
    log.error('worker failed', { error: e });
    return stopRequested ? 0 : 1;
  } finally {
    process.off('SIGTERM', signalHandler);
    process.off('SIGINT', signalHandler);
    await engine?.close().catch(() => undefined);
    reporter?.stop();
  }
}

if (require.main === module) {
  void runWorkerProcess().then((code) => process.exit(code));
}
