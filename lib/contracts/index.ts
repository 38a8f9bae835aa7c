/**
 * The contracts: everything that crosses a process boundary (S3 layout, SQS job message, DynamoDB
 * items, the job id rule and index profiles, the answers export, inference settings, environment
 * configuration). The Lambda, the worker, the CLI and the stack all import from here; each schema
 * is validated at every boundary.
 */
export * from './validate';
export * from './settings';
export * from './questions';
export * from './index-profile';
export * from './job-id';
export * from './s3-layout';
export * from './job-message';
export * from './items';
export * from './index-export';
export * from './archive-outputs';
export * from './env-config';
export * from './runtime-env';
export * from './worker-config';
