/**
 * Builds the CDK app: picks the environment named by `-c env=NAME` from the cdk.json context
 * `environments`, validates it (one error naming each bad key), and adds one stack for it.
 * cdk-nag's AwsSolutions pack runs at synth as a policy-validation plugin.
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { resolveEnvironment } from '../contracts/env-config';
import { LongsightStack, stackNameFor } from './longsight-stack';

export const ENVIRONMENTS_CONTEXT_KEY = 'environments';
export const ENV_CONTEXT_KEY = 'env';

export interface BuildOptions {
  /** Run cdk-nag at synth (default true). */
  nag?: boolean;
}

export function buildApp(app: App, options: BuildOptions = {}): LongsightStack {
  const envName = app.node.tryGetContext(ENV_CONTEXT_KEY) as string | undefined;
  const config = resolveEnvironment(app.node.tryGetContext(ENVIRONMENTS_CONTEXT_KEY), envName);
  const name = envName as string; // resolveEnvironment rejects a missing name
  const stack = new LongsightStack(app, stackNameFor(name), {
    stackName: stackNameFor(name),
    envName: name,
    config,
    description: `Longsight (${name}): long-video question answering, S3 → Lambda → SQS → ECS GPU → DynamoDB`,
    // Environment-agnostic unless the config pins account/region, so `cdk synth` works offline.
    env: config.account || config.region ? { account: config.account, region: config.region } : undefined,
  });
  if (options.nag ?? true) Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return stack;
}
