/**
 * Stack outputs of the archive side (the backfill state machine, the Athena/Glue table, the index
 * profile): the stack writes them, `longsight index/query --stack` and `run --stack` read them.
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
} as const;

export const INDEX_PROFILE_OUTPUT = ARCHIVE_OUTPUTS.profile;
