/**
 * Where the CLI's commands act: a deployed stack (names from its CloudFormation outputs), explicit
 * names (flags or LONGSIGHT_* variables), a `longsight run` going on this machine (its endpoints
 * and names in <home>/runs/), or the local history of finished runs (history.ts). Resolved once,
 * with an error that says what to pass when nothing is configured.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import type { ExtractRuntimeConfig } from '../../lib/contracts/env-config';
import { ENV } from '../../lib/contracts/runtime-env';
import { DEFAULT_RESOURCE_NAMES } from './embedded-aws';
import { homePath } from './home';

export interface Resources {
  bucket: string;
  queueUrl: string;
  dlqUrl: string;
  jobsTable: string;
  answersTable: string;
}

export interface TargetOptions {
  stack?: string;
  region?: string;
  /** One endpoint for S3, SQS and DynamoDB (LocalStack: http://localhost:4566). */
  endpoint?: string;
  bucket?: string;
  queueUrl?: string;
  dlqUrl?: string;
  jobsTable?: string;
  answersTable?: string;
}

export interface ResolvedTarget {
  resources: Resources;
  /** The local history of finished runs (tables only: no bucket objects, no queues). */
  history?: boolean;
  /** Environment for the SDK clients (endpoints, region) to apply before creating them. */
  env: Record<string, string>;
  /** In words, for messages: "stack Longsight-prod", "local run (pid 123)", … */
  source: string;
  /** A deployed stack's outputs (key → value), when the target is one. */
  outputs?: Record<string, string>;
  /** The extraction configuration of a local run (its index profile), when the target is one. */
  extractConfig?: ExtractRuntimeConfig;
}

/** Stable output keys of lib/stack/longsight-stack.ts. */
export const STACK_OUTPUTS: Record<keyof Resources, string> = {
  bucket: 'VideoBucketName',
  queueUrl: 'JobQueueUrl',
  dlqUrl: 'DeadLetterQueueUrl',
  jobsTable: 'JobsTableName',
  answersTable: 'AnswersTableName',
};

export interface LocalRunState {
  pid: number;
  env: Record<string, string>;
  resources: Resources;
  startedAt: string;
  /** What the run's extraction handler runs with (`longsight index` hands objects to the same one). */
  extractConfig?: ExtractRuntimeConfig;
}

/**
 * Announces a local run to other terminals (its endpoints and names in <home>/runs/) until the
 * returned function removes it. Every local run does, so `longsight jobs` / `status` / `ask` in
 * another terminal reach it while it runs.
 */
export function announceLocalRun(state: Pick<LocalRunState, 'env' | 'resources' | 'extractConfig'>, dir = homePath('runs')): () => void {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}.json`);
  const record: LocalRunState = { pid: process.pid, startedAt: new Date().toISOString(), ...state };
  writeFileSync(file, JSON.stringify(record, null, 2));
  return () => rmSync(file, { force: true });
}

/** The most recently started local run still going (the files of runs whose process is gone are removed). */
export function liveLocalRun(dir = homePath('runs')): LocalRunState | undefined {
  if (!existsSync(dir)) return undefined;
  let best: LocalRunState | undefined;
  for (const f of readdirSync(dir)) {
    if (!f.endsWith('.json')) continue;
    const file = join(dir, f);
    let s: LocalRunState;
    try {
      s = JSON.parse(readFileSync(file, 'utf8')) as LocalRunState;
      process.kill(s.pid, 0); // still running?
    } catch {
      rmSync(file, { force: true });
      continue;
    }
    if (!best || s.startedAt > best.startedAt) best = s;
  }
  return best;
}

/** A stack's outputs, key → value. */
export async function stackOutputs(stack: string, region?: string): Promise<Record<string, string>> {
  const cfn = new CloudFormationClient(region ? { region } : {});
  try {
    const r = await cfn.send(new DescribeStacksCommand({ StackName: stack }));
    return Object.fromEntries((r.Stacks?.[0]?.Outputs ?? []).filter((o) => o.OutputKey && o.OutputValue).map((o) => [o.OutputKey!, o.OutputValue!]));
  } catch (e) {
    throw new Error(`cannot read the outputs of stack "${stack}": ${(e as Error).message}`);
  } finally {
    cfn.destroy();
  }
}

export async function stackResources(stack: string, region?: string): Promise<Resources> {
  return resourcesFromOutputs(stack, await stackOutputs(stack, region));
}

function resourcesFromOutputs(stack: string, outputs: Record<string, string>): Resources {
  const get = (k: keyof Resources) => {
    const v = outputs[STACK_OUTPUTS[k]];
    if (!v) throw new Error(`stack "${stack}" has no output ${STACK_OUTPUTS[k]}: is it a Longsight stack (deployed with \`npx cdk deploy -c env=NAME\`)?`);
    return v;
  };
  return { bucket: get('bucket'), queueUrl: get('queueUrl'), dlqUrl: get('dlqUrl'), jobsTable: get('jobsTable'), answersTable: get('answersTable') };
}

/**
 * Where a command acts, in this order: --stack; every resource named (flags or LONGSIGHT_*); a
 * local run still going; with `allowHistory` (commands that only read the tables), the local
 * history of finished runs; otherwise an error that says what to pass.
 */
export async function resolveTarget(opts: TargetOptions, env: NodeJS.ProcessEnv = process.env, how: { allowHistory?: boolean } = {}): Promise<ResolvedTarget> {
  const sdkEnv: Record<string, string> = {};
  if (opts.region) {
    sdkEnv.AWS_REGION = opts.region;
  }
  if (opts.endpoint) {
    sdkEnv.AWS_ENDPOINT_URL = opts.endpoint;
    sdkEnv.AWS_ENDPOINT_URL_S3 = opts.endpoint;
    sdkEnv.AWS_ENDPOINT_URL_SQS = opts.endpoint;
    sdkEnv.AWS_ENDPOINT_URL_DYNAMODB = opts.endpoint;
  }
  const fromFlagsOrEnv: Partial<Resources> = {
    bucket: opts.bucket ?? env[ENV.videoBucket],
    queueUrl: opts.queueUrl ?? env[ENV.queueUrl],
    dlqUrl: opts.dlqUrl ?? env[ENV.dlqUrl],
    jobsTable: opts.jobsTable ?? env[ENV.jobsTable],
    answersTable: opts.answersTable ?? env[ENV.answersTable],
  };
  if (opts.stack) {
    const outputs = await stackOutputs(opts.stack, opts.region);
    const merged = { ...resourcesFromOutputs(opts.stack, outputs) };
    for (const [k, v] of Object.entries(fromFlagsOrEnv)) if (v && (opts as Record<string, unknown>)[k]) (merged as Record<string, string>)[k] = v;
    return { resources: merged, env: sdkEnv, source: `stack ${opts.stack}`, outputs };
  }
  const complete = Object.values(fromFlagsOrEnv).every(Boolean);
  if (complete) return { resources: fromFlagsOrEnv as Resources, env: sdkEnv, source: 'flags/environment' };
  const local = opts.endpoint ? undefined : liveLocalRun(homePath('runs', env));
  if (local) {
    return {
      resources: { ...local.resources, ...(Object.fromEntries(Object.entries(fromFlagsOrEnv).filter(([, v]) => v)) as Partial<Resources>) },
      env: { ...local.env, ...sdkEnv },
      source: `the local run (pid ${local.pid})`,
      extractConfig: local.extractConfig,
    };
  }
  const nothingNamed = !opts.endpoint && Object.values(fromFlagsOrEnv).every((v) => !v);
  if (how.allowHistory && nothingNamed) {
    return {
      resources: { bucket: DEFAULT_RESOURCE_NAMES.bucket, queueUrl: '', dlqUrl: '', jobsTable: DEFAULT_RESOURCE_NAMES.jobsTable, answersTable: DEFAULT_RESOURCE_NAMES.answersTable },
      env: {},
      history: true,
      source: `the local history of finished runs (${homePath('history', env)})`,
    };
  }
  const missing = (Object.keys(fromFlagsOrEnv) as (keyof Resources)[]).filter((k) => !fromFlagsOrEnv[k]);
  throw new Error(
    `no Longsight deployment to talk to: pass --stack NAME (a deployed environment, e.g. Longsight-prod), or every resource (missing: ${missing
      .map((k) => `--${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}`)
      .join(', ')}; or the LONGSIGHT_* variables), or keep a local run going with \`longsight run --keep-running\` in another terminal`,
  );
}
