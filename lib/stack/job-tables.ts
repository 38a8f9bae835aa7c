/**
 * The jobs and answers tables, keyed as the contracts define (lib/contracts/items.ts), so the
 * stack, the Lambda, the worker and the CLI agree on every key and index name.
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { ANSWERS_TABLE_KEYS, JOBS_TABLE_KEYS } from '../contracts/items';

export interface JobTablesProps {
  removalPolicy: RemovalPolicy;
}

const S = dynamodb.AttributeType.STRING;

export class JobTables extends Construct {
  readonly jobs: dynamodb.Table;
  readonly answers: dynamodb.Table;

  constructor(scope: Construct, id: string, props: JobTablesProps) {
    super(scope, id);
    const common = {
      // On-demand: load follows uploads, which come in bursts.
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      removalPolicy: props.removalPolicy,
      // A retained table is also protected from an accidental delete-table call.
      deletionProtection: props.removalPolicy === RemovalPolicy.RETAIN,
    };

    this.jobs = new dynamodb.Table(this, 'Jobs', {
      ...common,
      partitionKey: { name: JOBS_TABLE_KEYS.partitionKey, type: S },
    });
    // List jobs by status, newest first (e.g. every FAILED job with its reason).
    this.jobs.addGlobalSecondaryIndex({
      indexName: JOBS_TABLE_KEYS.byStatus.indexName,
      partitionKey: { name: JOBS_TABLE_KEYS.byStatus.partitionKey, type: S },
      sortKey: { name: JOBS_TABLE_KEYS.byStatus.sortKey, type: S },
    });
    // A video's jobs (each upload version, each `ask`).
    this.jobs.addGlobalSecondaryIndex({
      indexName: JOBS_TABLE_KEYS.byVideo.indexName,
      partitionKey: { name: JOBS_TABLE_KEYS.byVideo.partitionKey, type: S },
      sortKey: { name: JOBS_TABLE_KEYS.byVideo.sortKey, type: S },
    });

    this.answers = new dynamodb.Table(this, 'Answers', {
      ...common,
      partitionKey: { name: ANSWERS_TABLE_KEYS.partitionKey, type: S },
      sortKey: { name: ANSWERS_TABLE_KEYS.sortKey, type: S },
    });
    // Every answer about one video in one Query.
    this.answers.addGlobalSecondaryIndex({
      indexName: ANSWERS_TABLE_KEYS.byVideo.indexName,
      partitionKey: { name: ANSWERS_TABLE_KEYS.byVideo.partitionKey, type: S },
      sortKey: { name: ANSWERS_TABLE_KEYS.byVideo.sortKey, type: S },
    });
  }
}
