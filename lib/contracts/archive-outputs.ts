/**
 * What the archive side's stack and CLI agree on: the stack outputs (the backfill state machine,
 * the Athena/Glue table, the index profile), which `longsight index/query --stack` and
 * `run --stack` read, and the layout of the results bucket.
 */
export const ARCHIVE_OUTPUTS = {
  /** The environment's index profile id (p-<12 hex>): part of every job id its Lambda makes. */
  profile: 'IndexProfileId',
  /** The backfill state machine (a Distributed Map over the bucket listing). */
  stateMachine: 'BackfillStateMachineArn',
  /** Where backfill run results and Athena query results are written (expiring). */
  resultsBucket: 'IndexResultsBucketName',
  workGroup: 'AthenaWorkGroupName',
  database: 'GlueDatabaseName',
  /** Price of one GPU-hour the export's cost_usd is computed with. */
  usdPerGpuHour: 'GpuUsdPerGpuHour',
  /** The preferred GPU instance type (what `index --dry-run` prices jobs on). */
  instanceType: 'GpuInstanceType',
  /** Jobs one worker runs at once on its GPU (a job's GPU time is its worker time divided by this). */
  jobsPerWorker: 'GpuJobsPerWorker',
} as const;

export const INDEX_PROFILE_OUTPUT = ARCHIVE_OUTPUTS.profile;

/** Results bucket: Athena query results. */
export const ATHENA_RESULTS_PREFIX = 'athena/';
/** Results bucket: per backfill run (execution name), the CLI's selected items list and the map run's results. */
export const BACKFILL_RESULTS_PREFIX = 'backfill/';
