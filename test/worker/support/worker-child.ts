/**
 * A real worker process for the process-level fault tests: the production runWorkerProcess with the
 * real ONNX engine on the tiny model, each job held for TEST_ENGINE_DELAY_MS first so a test can
 * kill or stop the process while a job runs (the tiny model alone answers in well under a second).
 */
import { onnxEngineFactory, runWorkerProcess } from '../../../container/worker/main';
import { slowed } from './harness';

const delay = Number(process.env.TEST_ENGINE_DELAY_MS ?? 0);
void runWorkerProcess({
  createEngine: async (dir, config, log) => {
    const engine = await onnxEngineFactory(dir, config, log);
    return delay > 0 ? slowed(engine, delay) : engine;
  },
}).then((code) => process.exit(code));
