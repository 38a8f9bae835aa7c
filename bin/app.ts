#!/usr/bin/env node
/** CDK entry: `npx cdk synth|deploy -c env=dev` (environments live in cdk.json context). */
import { App } from 'aws-cdk-lib';
import { ContractError } from '../lib/contracts/validate';
import { buildApp } from '../lib/stack/app';

const app = new App();
try {
  buildApp(app);
} catch (error) {
  // A configuration mistake is the user's to fix: print the message (it names the key), not a stack trace.
  if (error instanceof ContractError) {
    console.error(error.message);
    process.exit(1);
  }
  throw error;
}
app.synth();
