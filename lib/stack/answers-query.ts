/**
 * The `answers` table for SQL: a Glue table over the export prefix (index/, partitioned by profile
 * and dt, one JSON line per answer) and an Athena workgroup that runs queries on it with encrypted
 * results and a scan limit from config. Columns come from the contracts (EXPORT_COLUMNS), the list
 * the worker's records and the local DuckDB view are built from too. Partitions are registered by
 * `longsight query --stack` before each query (Glue BatchCreatePartition), from the prefixes in S3.
 */
import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as athena from 'aws-cdk-lib/aws-athena';
import * as glue from 'aws-cdk-lib/aws-glue';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { EXPORT_DATA_COLUMNS, EXPORT_PARTITION_COLUMNS, EXPORT_TABLE_NAME, type ExportColumn } from '../contracts/index-export';
import { INDEX_PREFIX } from '../contracts/s3-layout';
import { ATHENA_RESULTS_PREFIX } from '../contracts/archive-outputs';

/** How the export's JSON lines are read (the OpenX JSON SerDe, which Athena documents for JSON). */
export const EXPORT_STORAGE = {
  inputFormat: 'org.apache.hadoop.mapred.TextInputFormat',
  outputFormat: 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat',
  serializationLibrary: 'org.openx.data.jsonserde.JsonSerDe',
} as const;

/** Glue database name of an environment: `longsight_<env>` (Athena names: lowercase, digits, underscores). */
export const glueDatabaseName = (envName: string): string => `longsight_${envName.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`;

export interface AnswersQueryProps {
  envName: string;
  removalPolicy: RemovalPolicy;
  videoBucket: s3.IBucket;
  resultsBucket: s3.IBucket;
  /** Bytes one query may scan (the workgroup's cutoff). */
  scanLimitBytes: number;
}

const glueColumn = (c: ExportColumn) => ({ name: c.name, type: c.type, comment: c.comment });

export class AnswersQuery extends Construct {
  readonly database: glue.CfnDatabase;
  readonly table: glue.CfnTable;
  readonly workGroup: athena.CfnWorkGroup;
  readonly databaseName: string;

  constructor(scope: Construct, id: string, props: AnswersQueryProps) {
    super(scope, id);
    const account = Stack.of(this).account;
    this.databaseName = glueDatabaseName(props.envName);
    this.database = new glue.CfnDatabase(this, 'Database', {
      catalogId: account,
      databaseInput: { name: this.databaseName, description: `Longsight (${props.envName}): every answer, exported by the workers` },
    });
    this.table = new glue.CfnTable(this, 'Table', {
      catalogId: account,
      databaseName: this.databaseName,
      tableInput: {
        name: EXPORT_TABLE_NAME,
        description: 'One row per answer of every finished job (index/profile=…/dt=…/<jobId>.jsonl)',
        tableType: 'EXTERNAL_TABLE',
        parameters: { classification: 'json', EXTERNAL: 'TRUE' },
        partitionKeys: EXPORT_PARTITION_COLUMNS.map(glueColumn),
        storageDescriptor: {
          columns: EXPORT_DATA_COLUMNS.map(glueColumn),
          location: `s3://${props.videoBucket.bucketName}/${INDEX_PREFIX}`,
          inputFormat: EXPORT_STORAGE.inputFormat,
          outputFormat: EXPORT_STORAGE.outputFormat,
          serdeInfo: { serializationLibrary: EXPORT_STORAGE.serializationLibrary, parameters: { 'ignore.malformed.json': 'FALSE' } },
        },
      },
    });
    this.table.node.addDependency(this.database);

    this.workGroup = new athena.CfnWorkGroup(this, 'WorkGroup', {
      name: `longsight-${props.envName}`,
      description: `Longsight (${props.envName}): SQL over the answers export`,
      state: 'ENABLED',
      recursiveDeleteOption: props.removalPolicy === RemovalPolicy.DESTROY,
      workGroupConfiguration: {
        // Clients cannot send results elsewhere or unencrypted, nor lift the scan limit.
        enforceWorkGroupConfiguration: true,
        publishCloudWatchMetricsEnabled: true,
        bytesScannedCutoffPerQuery: props.scanLimitBytes,
        engineVersion: { selectedEngineVersion: 'Athena engine version 3' },
        resultConfiguration: {
          outputLocation: `s3://${props.resultsBucket.bucketName}/${ATHENA_RESULTS_PREFIX}`,
          encryptionConfiguration: { encryptionOption: 'SSE_S3' },
        },
      },
    });
    this.workGroup.applyRemovalPolicy(props.removalPolicy);
  }
}
