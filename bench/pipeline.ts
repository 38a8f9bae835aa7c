/**
 * `npm run bench:pipeline`: what the pipeline costs per job beside the model's own compute, on the
 * tiny checkpoint (whose compute is small, so the overhead shows).
 *
 *  model compute   engine.answer() in this process on the same frames and settings (warm, mean of 5)
 *  pipeline        a job message sent to SQS → a real worker process (already warm) receives it,
 *                  claims the job in DynamoDB, loads the frames from S3, runs the engine, writes the
 *                  answers and DONE, deletes the message → the client sees DONE (polling DynamoDB)
 *  overhead        pipeline − the worker's own engine time (its job record), per job; with 20 jobs
 *                  queued at once, per job of throughput (wall ÷ 20, one worker).
 * The worker's own record (timings, from its claim to its DONE write) splits its part: frame load
 * (S3 GETs + decode), engine, answer and DONE writes; the rest (SQS send and long-poll receive,
 * parsing, the conditional claim, the message delete, the client's poll) is outside that span.
 * Everything runs on the embedded servers (loopback); real AWS adds its network latency per call.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { applyEnv, provisionLongsight, startEmbeddedAws } from '../container/local/embedded-aws';
import { getJobs } from '../container/local/job-queries';
import { resolveDefaultModel } from '../container/local/model';
import { spawnWorkers, stopWorkers } from '../container/local/worker-processes';
import { createOnnxEngine } from '../container/runtime/onnx-engine';
import { checkHealth } from '../container/worker/health';
import { createAwsClients } from '../lib/aws-clients';
import { ENV, type JobItem, type WorkerConfigInput } from '../lib/contracts';
import { frameJpeg, seedJob } from '../test/worker/support/jobs';

const FRAMES = 4;
const MAX_NEW_TOKENS = 8;
const QUESTIONS = ['What is shown in this video?'];

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

async function main() {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  process.env.LONGSIGHT_LOG_LEVEL = 'warn';
  const model = await resolveDefaultModel();
  const aws = await startEmbeddedAws();
  applyEnv(aws.env);
  const clients = createAwsClients();
  const r = await provisionLongsight(clients, {}, { visibilityTimeoutSeconds: 60 });
  const tmp = mkdtempSync(join(tmpdir(), 'longsight-bench-'));

  // Model compute alone, in this process (threads as the worker gets them).
  const engine = await createOnnxEngine({ modelDir: model.dir, executionProvider: 'cpu', threads: 1 });
  const frames = await Promise.all(Array.from({ length: FRAMES }, (_, i) => frameJpeg(i)));
  const probe = await seedJob(clients, r, { frames: FRAMES, questions: QUESTIONS, settings: { maxNewTokens: MAX_NEW_TOKENS } }, false);
  const compute: number[] = [];
  for (let i = 0; i < 6; i++) {
    const t = performance.now();
    await engine.answer({ frames, questions: probe.message.questions, settings: probe.message.settings });
    if (i > 0) compute.push(performance.now() - t);
  }
  await engine.close();
  const computeMs = mean(compute);

  // One warm worker process.
  const health = join(tmp, 'health');
  const config: WorkerConfigInput = {
    waitTimeSeconds: 20,
    visibilityTimeoutSeconds: 60,
    model: { dir: model.dir, executionProvider: 'cpu', threads: 1 },
    health: { file: health, intervalSeconds: 0.2, maxAgeSeconds: 5 },
    metrics: { enabled: false },
  };
  const { workers, log } = spawnWorkers(1, { ...aws.env, [ENV.queueUrl]: r.queueUrl, [ENV.jobsTable]: r.jobsTable, [ENV.answersTable]: r.answersTable, [ENV.workerConfig]: JSON.stringify(config), [ENV.logLevel]: 'warn' }, join(tmp, 'worker.log'));
  for (let i = 0; !/healthy: ready/.test(checkHealth(health, 5).message); i++) {
    if (i >= 600 || workers[0].proc.exitCode !== null) throw new Error(`the worker did not become ready in 60 s: see ${join(tmp, 'worker.log')}`);
    await new Promise((res) => setTimeout(res, 100));
  }

  const rows: string[] = [];
  // The first single job warms the path up and is not reported.
  for (const [run, n] of [1, 1, 20].entries()) {
    process.stderr.write(`bench:pipeline: ${run === 0 ? 'warm-up, ' : ''}${n} job${n === 1 ? '' : 's'}…\n`);
    const jobs = [];
    for (let i = 0; i < n; i++) jobs.push(await seedJob(clients, r, { frames: FRAMES, questions: QUESTIONS, settings: { maxNewTokens: MAX_NEW_TOKENS } }, false));
    const t0 = performance.now();
    await Promise.all(jobs.map((j) => clients.sqs.send(new SendMessageCommand({ QueueUrl: r.queueUrl, MessageBody: j.body }))));
    let items = new Map<string, JobItem>();
    for (;;) {
      items = await getJobs(clients.ddb, r.jobsTable, jobs.map((j) => j.jobId));
      const failed = [...items.values()].find((i) => i.status === 'FAILED');
      if (failed) throw new Error(`job ${failed.jobId} FAILED: ${failed.reason}`);
      if ([...items.values()].filter((i) => i.status === 'DONE').length === n) break;
      if (performance.now() - t0 > 10 * 60_000) throw new Error(`${n} job(s) not DONE after 10 minutes: see ${join(tmp, 'worker.log')}`);
      await new Promise((res) => setTimeout(res, 5));
    }
    const wallMs = performance.now() - t0;
    if (run === 0) continue;
    const it = [...items.values()];
    const frameLoad = mean(it.map((x) => x.timings.frameLoadMs ?? 0));
    const engineMs = mean(it.map((x) => (x.timings.visionMs ?? 0) + (x.timings.prefillMs ?? 0) + (x.timings.decodeMs ?? 0)));
    const workerTotal = mean(it.map((x) => x.timings.totalMs ?? 0));
    const perJob = wallMs / n;
    const overhead = perJob - engineMs;
    rows.push(
      `| ${n} | ${perJob.toFixed(0)} | ${engineMs.toFixed(0)} | ${overhead.toFixed(0)} (${((100 * overhead) / perJob).toFixed(0)} %) | ${frameLoad.toFixed(0)} | ${(workerTotal - frameLoad - engineMs).toFixed(0)} | ${(perJob - workerTotal).toFixed(0)} | ${computeMs.toFixed(0)} |`,
    );
  }
  await stopWorkers(workers, 10_000);
  log.end();
  await aws.stop();
  const out = [
    `tiny checkpoint (${model.manifest.modelId}), ${FRAMES} frames, ${QUESTIONS.length} question, maxNewTokens ${MAX_NEW_TOKENS}, 1 worker process (CPU EP, 1 thread); per job, ms`,
    '',
    '| jobs | pipeline per job | model compute (worker\'s engine) | overhead = pipeline − compute | of which: frame load (S3 GETs + JPEG decode) | answer + DONE writes | SQS send/receive, claim, delete, client poll (outside the worker\'s timed span) | reference: same engine call in-process |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
  ];
  process.stdout.write(out.join('\n') + '\n');
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`bench:pipeline failed: ${(e as Error).stack}\n`);
    process.exit(1);
  },
);
