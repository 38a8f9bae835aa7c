/** Where the stack finds the code it deploys, relative to the repository root. */
import * as path from 'node:path';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');

/** The reconciler Lambda's entry (exports `handler`). */
export const RECONCILE_HANDLER_ENTRY = path.join(REPO_ROOT, 'lambda', 'reconcile', 'handler.ts');

/** The worker image is built from the repository root with this Dockerfile. */
export const WORKER_DOCKERFILE = 'container/Dockerfile';

/**
 * Paths left out of the images' build context (the worker's and the extraction Lambda's). Without them CDK would hash (and copy into
 * cdk.out) node_modules and every model cache on each synth: minutes instead of milliseconds. The
 * Dockerfile installs production dependencies itself from package-lock.json.
 */
export const DOCKER_CONTEXT_EXCLUDE = [
  'node_modules',
  '**/node_modules',
  'cdk.out',
  '.git',
  'dist',
  '.cache',
  'coverage',
  'test',
  'bench',
  '.ci',
  '.ci-results',
  '.notes',
  '.scratch',
  // The CDK app: the worker image needs neither the constructs nor their dev dependencies.
  'lib/stack',
  'cdk.json',
  '*.log',
];
