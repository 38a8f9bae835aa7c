/**
 * The reconciler: a Lambda on an EventBridge schedule (reconciler.scheduleMinutes) that gives every
 * unfinished job a way forward while no worker runs (lambda/reconcile/reconciler.ts): re-queues a
 * job whose message was lost or fails it past the attempt budget, closes jobs whose extraction
 * never finished, and reads the whole DLQ. One pass at a time (reserved concurrency 1).
 */
import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { reconcilerRuntimeConfig, type EnvironmentConfig } from '../contracts/env-config';
import { JOBS_TABLE_KEYS } from '../contracts/items';
import { ENV } from '../contracts/runtime-env';
import { FRAMES_PREFIX } from '../contracts/s3-layout';
import { functionRoleAndLogs } from './function-role';
import { RECONCILE_HANDLER_ENTRY, REPO_ROOT } from './paths';

export interface ReconcilerFunctionProps {
  config: EnvironmentConfig;
  removalPolicy: RemovalPolicy;
  videoBucket: s3.IBucket;
  jobsTable: dynamodb.ITable;
  jobQueue: sqs.IQueue;
  deadLetterQueue: sqs.IQueue;
  metricDimensions: Record<string, string>;
}

export class ReconcilerFunction extends Construct {
  readonly fn: nodejs.NodejsFunction;
  readonly schedule: events.Rule;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: ReconcilerFunctionProps) {
    super(scope, id);
    const { config } = props;
    const { role, logGroup } = functionRoleAndLogs(this, {
      description: 'Reconciler: list stale jobs, re-queue or fail them, read the DLQ',
      retentionDays: config.retention.logRetentionDays,
      removalPolicy: props.removalPolicy,
    });
    this.logGroup = logGroup;

    this.fn = new nodejs.NodejsFunction(this, 'Function', {
      entry: RECONCILE_HANDLER_ENTRY,
      handler: 'handler',
      projectRoot: REPO_ROOT,
      depsLockFilePath: `${REPO_ROOT}/package-lock.json`,
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      role,
      logGroup: this.logGroup,
      memorySize: 256,
      // A pass reads at most maxJobsPerPass items per status and maxDeadLettersPerPass dead letters.
      timeout: Duration.minutes(5),
      // One pass at a time: two would only race on the same conditional writes.
      reservedConcurrentExecutions: 1,
      retryAttempts: 0,
      environment: {
        [ENV.reconcilerConfig]: JSON.stringify(reconcilerRuntimeConfig(config, props.metricDimensions)),
        [ENV.jobsTable]: props.jobsTable.tableName,
        [ENV.queueUrl]: props.jobQueue.queueUrl,
        [ENV.dlqUrl]: props.deadLetterQueue.queueUrl,
        [ENV.logLevel]: 'info',
        NODE_OPTIONS: '--enable-source-maps',
      },
      bundling: { target: 'node22', minify: true, sourceMap: true, bundleAwsSDK: true, forceDockerBundling: false },
    });

    // A missed schedule is caught up by the next one: no retries (the pass is idempotent).
    this.schedule = new events.Rule(this, 'Schedule', {
      description: 'Runs the Longsight reconciler',
      schedule: events.Schedule.rate(Duration.minutes(config.reconciler.scheduleMinutes)),
      targets: [new targets.LambdaFunction(this.fn, { retryAttempts: 0 })],
    });

    this.grantAccess(props);
  }

  /** Least privilege, per action the reconciler performs (explicit actions, no wildcards). */
  private grantAccess(props: ReconcilerFunctionProps): void {
    // Stale jobs by status (the byStatus index), read each consistently, conditional updates.
    iam.Grant.addToPrincipal({
      grantee: this.fn,
      actions: ['dynamodb:Query'],
      resourceArns: [`${props.jobsTable.tableArn}/index/${JOBS_TABLE_KEYS.byStatus.indexName}`],
    });
    iam.Grant.addToPrincipal({
      grantee: this.fn,
      actions: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
      resourceArns: [props.jobsTable.tableArn],
    });
    // A re-sent job message (and whether the queue has a backlog).
    iam.Grant.addToPrincipal({
      grantee: this.fn,
      actions: ['sqs:SendMessage', 'sqs:GetQueueAttributes'],
      resourceArns: [props.jobQueue.queueArn],
    });
    // The DLQ read whole, then shown again; never deleted (requeue-dlq's job).
    iam.Grant.addToPrincipal({
      grantee: this.fn,
      actions: ['sqs:ReceiveMessage', 'sqs:ChangeMessageVisibility'],
      resourceArns: [props.deadLetterQueue.queueArn],
    });
    // The frame manifests a re-sent message is rebuilt from.
    iam.Grant.addToPrincipal({
      grantee: this.fn,
      actions: ['s3:GetObject'],
      resourceArns: [props.videoBucket.arnForObjects(`${FRAMES_PREFIX}*`)],
    });
    const bucketId = Stack.of(this).getLogicalId(props.videoBucket.node.defaultChild as s3.CfnBucket);
    Validations.of(this.fn).acknowledge({
      id: 'AwsSolutions-L1',
      reason: 'The reconciler is bundled for Node.js 22 (esbuild target node22), the runtime its code is tested on; a newer runtime is a deliberate, tested change.',
    });
    Validations.of(this.fn.role!).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/${FRAMES_PREFIX}*]`,
      reason: 'Frame manifests are frames/<jobId>/manifest.json, named at run time from the job id; read-only.',
    });
  }
}
