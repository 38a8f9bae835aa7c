/**
 * cdk-nag is wired into the app itself (not only run by the tests): a non-compliant resource added
 * to an environment's stack makes synthesis fail with the AwsSolutions rule that it breaks.
 */
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { buildApp } from '../../lib/stack/app';
import { makeApp, readCdkJson, removeOutdir } from './synth';

jest.setTimeout(120_000);

it('fails synth on an unacknowledged AwsSolutions finding', () => {
  // Bundling skipped: this test is about validation, not assets.
  const { app, outdir } = makeApp({ ...readCdkJson().context, env: 'dev', 'aws:cdk:bundling-stacks': [] });
  try {
    const stack = buildApp(app);
    new sqs.Queue(stack, 'NonCompliant', { encryption: sqs.QueueEncryption.UNENCRYPTED });
    expect(() => app.synth()).toThrow(/AwsSolutions-SQS3[\s\S]*NonCompliant|NonCompliant[\s\S]*AwsSolutions-SQS3/);
  } finally {
    removeOutdir({ outdir });
  }
});
