/**
 * Where the CLI's commands act: a deployed stack (names from its CloudFormation outputs), explicit
 * names (flags or LONGSIGHT_* variables), or a `longsight run --keep-running` on this machine (its
 * endpoints and names in .cache/longsight-local.json). Resolved once, with an error that says what
 * to pass when nothing is configured.
 */
import { existsSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import type { ExtractRuntimeConfig } from '../../lib/contracts/env-config';
import { ENV } from '../../lib/contracts/runtime-env';

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
  /** Environment for the SDK clients (endpoints, region) to apply before creating them. */
  env: Record<string, string>;
  /** In words, for messages: "stack Longsight-prod", "local run (pid 123)", … */
  source: string;
  /** A deployed stack's outputs (key → value), when the target is one. */
  outputs?: Record<string, string>;
  /** The extraction configuration of a local run (its index profile), when the target is one. */
  extractConfig?: ExtractRuntimeConfig;
}

export const LOCAL_STATE_FILE = resolve('.cache', 'longsight-local.json');

/** Stable output keys of lib/stack/longsight-stack.ts. */
export const STACK_OUTPUTS: Record<keyof Resources, string> = {
  bucket: 'VideoBucketName',
  queueUrl: 'JobQueueUrl',
  dlqUrl: 'DeadLetterQueueUrl',
  jobsTable: 'JobsTableName',
  answersTable: 'AnswersTableName',
};

interface LocalState {
  pid: number;
  env: Record<string, string>;
  resources: Resources;
  /** What the run's extraction handler runs with (`longsight index` hands objects to the same one). */
  extractConfig?: ExtractRuntimeConfig;
}

export function writeLocalState(state: LocalState, file = LOCAL_STATE_FILE): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(state, null, 2));
}

export function removeLocalState(file = LOCAL_STATE_FILE): void {
  rmSync(file, { force: true });
}

function readLocalState(file = LOCAL_STATE_FILE): LocalState | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const s = JSON.parse(readFileSync(file, 'utf8')) as LocalState;
    process.kill(s.pid, 0); // still running?
    return s;
  } catch {
    return undefined;
  }
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

export async function resolveTarget(opts: TargetOptions, env: NodeJS.ProcessEnv = process.env): Promise<ResolvedTarget> {
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
  const local = readLocalState();
  if (local && !opts.endpoint) {
    return {
      resources: { ...local.resources, ...(Object.fromEntries(Object.entries(fromFlagsOrEnv).filter(([, v]) => v)) as Partial<Resources>) },
      env: { ...local.env, ...sdkEnv },
      source: `the local run (pid ${local.pid})`,
      extractConfig: local.extractConfig,
    };
  }
  const missing = (Object.keys(fromFlagsOrEnv) as (keyof Resources)[]).filter((k) => !fromFlagsOrEnv[k]);
  throw new Error(
    `no Longsight deployment to talk to: pass --stack NAME (a deployed environment, e.g. Longsight-prod), or every resource (missing: ${missing
      .map((k) => `--${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}`)
      .join(', ')}; or the LONGSIGHT_* variables), or keep a local run going with \`npm start -- --keep-running\` in another terminal`,
  );
}
