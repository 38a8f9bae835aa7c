/**
 * Environment selection and validation at synth time (`-c env=NAME`), and the pure sizing rules
 * the stack derives from the configuration. No synthesis here: these fail before any construct.
 */
import { App } from 'aws-cdk-lib';
import { ContractError, resolveEnvironment, EnvironmentConfig } from '../../lib/contracts';
import { buildApp } from '../../lib/stack/app';
import { backlogScalingSteps, workerCountSteps, MAX_COUNT_STEPS } from '../../lib/stack/backlog-scaling';
import { extractRuntimeConfig } from '../../lib/stack/extraction-function';
import { taskSize } from '../../lib/stack/gpu-worker-service';
import { parseS3Uri } from '../../lib/stack/model-artifact-access';
import { readCdkJson } from './synth';

const cdkJson = readCdkJson();
const environments = cdkJson.context.environments;

function buildWith(context: Record<string, unknown>): () => void {
  return () => buildApp(new App({ context: { ...cdkJson.context, ...context } }), { nag: false });
}

function withEnv(patch: (env: any) => void): Record<string, unknown> {
  const copy = structuredClone(environments) as Record<string, any>;
  patch(copy.dev);
  return { environments: copy, env: 'dev' };
}

describe('cdk.json environments', () => {
  it('has dev and prod, and every environment validates', () => {
    expect(Object.keys(environments)).toEqual(expect.arrayContaining(['dev', 'prod']));
    for (const name of Object.keys(environments)) expect(() => resolveEnvironment(environments, name)).not.toThrow();
  });

  it('makes dev cheap and disposable and prod durable and larger', () => {
    const dev = resolveEnvironment(environments, 'dev');
    const prod = resolveEnvironment(environments, 'prod');
    expect(dev.gpu.spot).toBe(true);
    expect(prod.gpu.spot).toBe(false);
    expect(prod.gpu.maxWorkers).toBeGreaterThan(dev.gpu.maxWorkers);
    expect(prod.gpu.instanceTypes).not.toEqual(dev.gpu.instanceTypes);
    expect(prod.extraction.frames).toBe(256);
    expect(prod.extraction.frames).toBeGreaterThan(dev.extraction.frames);
    expect(prod.questions.length).toBeGreaterThan(dev.questions.length);
    expect(dev.retention.removalPolicy).toBe('destroy');
    expect(prod.retention.removalPolicy).toBe('retain');
    expect(prod.retention.logRetentionDays).toBeGreaterThan(dev.retention.logRetentionDays);
    for (const env of [dev, prod]) expect(env.model.artifactUri).toMatch(/^s3:\/\/[a-z0-9.-]+\/.+\/$/);
    // The paper's defaults: progressive pooling K=4, s_h=2, s_l=8 and L_v = 6272.
    for (const env of [dev, prod]) {
      expect(env.inference.pooling).toEqual({ groupSize: 4, strideHigh: 2, strideLow: 8 });
      expect(env.inference.rope.visualContextWindow).toBe(6272);
    }
  });
});

describe('environment selection errors (synth fails with a message naming the key)', () => {
  it('rejects an unknown environment and lists the allowed ones', () => {
    expect(buildWith({ env: 'staging' })).toThrow('invalid configuration: env: unknown environment "staging": allowed are dev, prod');
  });

  it('asks for an environment when none is chosen', () => {
    expect(buildWith({ env: undefined })).toThrow('env: no environment chosen: pass -c env=NAME, one of dev, prod');
  });

  it('fails without an environments object', () => {
    expect(buildWith({ environments: undefined, env: 'dev' })).toThrow('environments: missing');
  });

  it('names a bad value by its path and says what is allowed', () => {
    const run = buildWith(withEnv((dev) => (dev.gpu.maxWorkers = 0)));
    expect(run).toThrow(ContractError);
    expect(run).toThrow(/environments\.dev\.gpu\.maxWorkers: .*>=\s*1/);
  });

  it('names an instance type that is not a supported GPU type', () => {
    expect(buildWith(withEnv((dev) => (dev.gpu.instanceTypes = ['t3.large'])))).toThrow(/environments\.dev\.gpu\.instanceTypes\[0\]: .*g5\.xlarge/);
  });

  it('names an unknown key', () => {
    expect(buildWith(withEnv((dev) => (dev.gpu.maxWorker = 4)))).toThrow('environments.dev.gpu.maxWorker: unknown key "maxWorker"');
  });

  it('rejects a model location that is not an S3 URI', () => {
    expect(buildWith(withEnv((dev) => (dev.model.artifactUri = 'https://example.com/model')))).toThrow(
      'environments.dev.model.artifactUri: must be an S3 URI like s3://bucket/prefix/',
    );
  });

  it('rejects a removal policy other than destroy or retain', () => {
    expect(buildWith(withEnv((dev) => (dev.retention.removalPolicy = 'snapshot')))).toThrow(/environments\.dev\.retention\.removalPolicy: .*"destroy"\|"retain"/);
  });

  it('rejects a reconciler threshold a live job could reach, and a schedule out of range', () => {
    expect(buildWith(withEnv((dev) => (dev.reconciler = { staleAfterMinutes: 5 })))).toThrow(
      'environments.dev.reconciler.staleAfterMinutes: must be at least twice queue.visibilityTimeoutSeconds (300 s), i.e. >= 10',
    );
    expect(buildWith(withEnv((dev) => (dev.reconciler = { scheduleMinutes: 0 })))).toThrow(/environments\.dev\.reconciler\.scheduleMinutes: Too small/);
  });

  it('takes price overrides for known instance types only, and no negative prices', () => {
    expect(resolveEnvironment(withEnv((dev) => (dev.pricing = { usdPerHour: { 'g5.xlarge': 0.31 } })).environments, 'dev').pricing.usdPerHour).toEqual({ 'g5.xlarge': 0.31 });
    expect(buildWith(withEnv((dev) => (dev.pricing = { usdPerHour: { 'x9.huge': 1 } })))).toThrow(/environments\.dev\.pricing\.usdPerHour\.x9\.huge: .*/);
    expect(buildWith(withEnv((dev) => (dev.pricing = { usdPerHour: { 'g5.xlarge': -1 } })))).toThrow(/environments\.dev\.pricing\.usdPerHour\.g5\.xlarge: Too small/);
  });

  it('reports every bad key at once', () => {
    const run = buildWith(withEnv((dev) => {
      dev.lambda.memoryMiB = 64;
      dev.queue.maxReceiveCount = 0;
    }));
    expect(run).toThrow(/environments\.dev\.lambda\.memoryMiB: .*; environments\.dev\.queue\.maxReceiveCount: /);
  });
});

describe('backlog scaling steps', () => {
  /** What the policy sets for a backlog b, read back from the steps as Application Auto Scaling would. */
  function tasksFor(steps: ReturnType<typeof backlogScalingSteps>, b: number): number {
    if (b <= 0) return steps[0].change;
    const hit = steps.slice(1).find((s) => b >= (s.lower ?? 0) && (s.upper === undefined || b < s.upper));
    if (!hit) throw new Error(`no step for backlog ${b}`);
    return hit.change;
  }

  it.each([
    [2, 1],
    [8, 1],
    [8, 2],
    [100, 1],
    [37, 3],
  ])('max %i workers, %i job(s) each: tasks = min(ceil(backlog / jobs), max), 0 only when empty', (max, jobs) => {
    const steps = backlogScalingSteps(max, jobs);
    expect(steps.length).toBeLessThanOrEqual(MAX_COUNT_STEPS + 1);
    expect(tasksFor(steps, 0)).toBe(0);
    for (let b = 1; b <= max * jobs + 5; b++) {
      const needed = Math.min(Math.ceil(b / jobs), max);
      const got = tasksFor(steps, b);
      // Never fewer workers than the backlog needs, never more than max; exact when max fits the step limit.
      expect(got).toBeGreaterThanOrEqual(needed);
      expect(got).toBeLessThanOrEqual(max);
      if (max <= MAX_COUNT_STEPS) expect(got).toBe(needed);
    }
  });

  it('spaces counts evenly when max exceeds the step limit', () => {
    const counts = workerCountSteps(100);
    expect(counts.length).toBe(MAX_COUNT_STEPS);
    expect(counts[counts.length - 1]).toBe(100);
    expect([...counts].sort((a, b) => a - b)).toEqual(counts);
  });
});

describe('worker task size', () => {
  it('fits one task per GPU on the smallest allowed type', () => {
    expect(taskSize(['g5.xlarge'])).toEqual({ gpusPerInstance: 1, cpu: 4 * 1024 - 256, memoryReservationMiB: Math.floor(16 * 1024 * 0.85) });
    // g6e.xlarge has 32 GiB, g6e.2xlarge 64: the task must fit the smaller.
    expect(taskSize(['g6e.2xlarge', 'g6e.xlarge']).memoryReservationMiB).toBe(Math.floor(32 * 1024 * 0.85));
    // 8-GPU instances hold 8 tasks, each with an eighth of the machine.
    expect(taskSize(['p4d.24xlarge'])).toEqual({ gpusPerInstance: 8, cpu: 12 * 1024 - 256, memoryReservationMiB: Math.floor(144 * 1024 * 0.85) });
  });
});

describe('model artifact location', () => {
  it('reads bucket and folder prefix from the URI', () => {
    expect(parseS3Uri('s3://models/llava/7b/')).toEqual({ bucket: 'models', prefix: 'llava/7b/' });
    expect(parseS3Uri('s3://models/llava/7b')).toEqual({ bucket: 'models', prefix: 'llava/7b/' });
    expect(parseS3Uri('s3://models')).toEqual({ bucket: 'models', prefix: '' });
    expect(() => parseS3Uri('models/llava')).toThrow('model.artifactUri');
  });
});

describe('the Lambda runtime configuration', () => {
  it('carries extraction limits, default settings and questions, valid under the handler schema', () => {
    const prod: EnvironmentConfig = resolveEnvironment(environments, 'prod');
    const runtime = extractRuntimeConfig(prod);
    expect(runtime.extraction.frames).toBe(256);
    expect(runtime.inference).toEqual(prod.inference);
    expect(runtime.questions).toEqual(prod.questions);
    // The model id is part of the index profile the Lambda's job ids carry.
    expect(runtime.modelId).toBe('llava-onevision-qwen2-7b-ov');
  });
});

describe('archive indexing configuration', () => {
  it('defaults the backfill to the Lambda\'s concurrency, 5% tolerated failures, a 10 GiB scan limit, 30-day results', () => {
    const dev = resolveEnvironment(environments, 'dev');
    expect(dev.index).toEqual({ toleratedFailurePercentage: 5, queryScanLimitGiB: 10, resultExpiryDays: 30 });
  });
  it('refuses a backfill concurrency above the Lambda\'s reserved concurrency, naming both', () => {
    expect(buildWith(withEnv((e) => (e.index = { maxConcurrency: 6 })))).toThrow(
      'invalid configuration: environments.dev.index.maxConcurrency: must be at most lambda.reservedConcurrency (5): more parallel extractions than the function may run would only be throttled',
    );
    expect(buildWith(withEnv((e) => (e.index = { queryScanLimitGiB: 0 })))).toThrow(/environments\.dev\.index\.queryScanLimitGiB: Too small/);
  });
});
