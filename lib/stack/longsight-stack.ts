/**
 * One Longsight environment: upload bucket → extraction Lambda → job queue → GPU workers → tables,
 * with monitoring, and the archive side: the backfill state machine and the `answers` table for
 * SQL (Glue + Athena). Each part is a construct with one job; this file only wires them together.
 */
import { CfnOutput, RemovalPolicy, Stack, StackProps, Tags } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { ARCHIVE_OUTPUTS } from '../contracts/archive-outputs';
import { backfillConcurrency, extractionProfile, type EnvironmentConfig } from '../contracts/env-config';
import { AccessLogBucket } from './access-log-bucket';
import { AnswersQuery } from './answers-query';
import { BackfillStateMachine } from './backfill-state-machine';
import { ExtractionFunction, extractRuntimeConfig } from './extraction-function';
import { GpuWorkerService, preferredUsdPerGpuHour } from './gpu-worker-service';
import { IndexResultsBucket } from './index-results-bucket';
import { JobQueue } from './job-queue';
import { JobTables } from './job-tables';
import { ReconcilerFunction } from './reconciler-function';
import { Monitoring } from './monitoring';
import { VideoBucket } from './video-bucket';
import { WorkerNetwork } from './worker-network';

export interface LongsightStackProps extends StackProps {
  /** The environment's name in cdk.json (dev, prod, ...). */
  envName: string;
  config: EnvironmentConfig;
}

/** `Longsight-<env>`: the CLI finds an environment's resources through this stack's outputs. */
export const stackNameFor = (envName: string): string => `Longsight-${envName}`;

export class LongsightStack extends Stack {
  readonly videoBucket: VideoBucket;
  readonly tables: JobTables;
  readonly jobQueue: JobQueue;
  readonly extraction: ExtractionFunction;
  readonly workers: GpuWorkerService;
  readonly reconciler: ReconcilerFunction;
  readonly monitoring: Monitoring;
  readonly indexResults: IndexResultsBucket;
  readonly backfill: BackfillStateMachine;
  readonly answersQuery: AnswersQuery;
  private readonly config: EnvironmentConfig;

  constructor(scope: Construct, id: string, props: LongsightStackProps) {
    super(scope, id, props);
    const { config } = props;
    this.config = config;
    const removalPolicy = config.retention.removalPolicy === 'destroy' ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN;
    Tags.of(this).add('project', 'longsight');
    Tags.of(this).add('environment', props.envName);

    const accessLogs = new AccessLogBucket(this, 'AccessLogs', { removalPolicy, retentionDays: config.retention.logRetentionDays });
    this.videoBucket = new VideoBucket(this, 'Videos', {
      removalPolicy,
      frameExpiryDays: config.retention.frameExpiryDays,
      accessLogBucket: accessLogs.bucket,
    });
    this.tables = new JobTables(this, 'Tables', { removalPolicy });
    this.jobQueue = new JobQueue(this, 'Queue', {
      removalPolicy,
      visibilityTimeoutSeconds: config.queue.visibilityTimeoutSeconds,
      maxReceiveCount: config.queue.maxReceiveCount,
    });

    this.extraction = new ExtractionFunction(this, 'Extract', {
      config,
      removalPolicy,
      videoBucket: this.videoBucket.bucket,
      jobsTable: this.tables.jobs,
      jobQueue: this.jobQueue.queue,
    });
    this.videoBucket.notifyOnVideoUpload(this.extraction.fn);

    const network = new WorkerNetwork(this, 'Network', { flowLogBucket: accessLogs.bucket });
    this.workers = new GpuWorkerService(this, 'Workers', {
      config,
      removalPolicy,
      vpc: network.vpc,
      queue: this.jobQueue.queue,
      deadLetterQueue: this.jobQueue.deadLetterQueue,
      jobsTable: this.tables.jobs,
      answersTable: this.tables.answers,
      videoBucket: this.videoBucket.bucket,
      metricDimensions: { Stack: this.stackName },
    });

    // Independent of the workers (they scale to zero): no job is left without a way forward.
    this.reconciler = new ReconcilerFunction(this, 'Reconciler', {
      config,
      removalPolicy,
      videoBucket: this.videoBucket.bucket,
      jobsTable: this.tables.jobs,
      jobQueue: this.jobQueue.queue,
      deadLetterQueue: this.jobQueue.deadLetterQueue,
      metricDimensions: { Stack: this.stackName },
    });

    // The archive side: index what is already in the bucket, and SQL over every answer.
    this.indexResults = new IndexResultsBucket(this, 'IndexResults', { removalPolicy, expiryDays: config.index.resultExpiryDays, accessLogBucket: accessLogs.bucket });
    this.backfill = new BackfillStateMachine(this, 'Backfill', {
      videoBucket: this.videoBucket.bucket,
      resultsBucket: this.indexResults.bucket,
      extractFunction: this.extraction.fn,
      maxConcurrency: backfillConcurrency(config),
      toleratedFailurePercentage: config.index.toleratedFailurePercentage,
      removalPolicy,
      logRetentionDays: config.retention.logRetentionDays,
    });
    this.answersQuery = new AnswersQuery(this, 'AnswersQuery', {
      envName: props.envName,
      removalPolicy,
      videoBucket: this.videoBucket.bucket,
      resultsBucket: this.indexResults.bucket,
      scanLimitBytes: Math.round(config.index.queryScanLimitGiB * 2 ** 30),
    });

    this.monitoring = new Monitoring(this, 'Monitoring', {
      stackName: this.stackName,
      removalPolicy,
      logRetentionDays: config.retention.logRetentionDays,
      oldestMessageAlarmSeconds: config.queue.oldestMessageAlarmSeconds,
      queue: this.jobQueue.queue,
      deadLetterQueue: this.jobQueue.deadLetterQueue,
      extractFunction: this.extraction.fn,
      extractFailedEvents: this.extraction.failedEvents,
      cluster: this.workers.cluster,
      service: this.workers.service.service,
      autoScalingGroup: this.workers.autoScalingGroup,
    });

    this.outputs();
  }

  /** Stable output keys: the CLI resolves a deployed environment from these. */
  private outputs(): void {
    const out = (id: string, value: string, description: string) => new CfnOutput(this, id, { value, description });
    out('VideoBucketName', this.videoBucket.bucket.bucketName, 'Upload videos here (and optional <key>.questions.json sidecars)');
    out('JobsTableName', this.tables.jobs.tableName, 'One item per job (status, timings, tokens)');
    out('AnswersTableName', this.tables.answers.tableName, 'One item per answer');
    out('JobQueueUrl', this.jobQueue.queue.queueUrl, 'Job messages for the GPU workers');
    out('DeadLetterQueueUrl', this.jobQueue.deadLetterQueue.queueUrl, 'Jobs that failed maxReceiveCount times');
    out('ExtractFunctionName', this.extraction.fn.functionName, 'Frame-extraction Lambda');
    out('ExtractFailedEventsQueueUrl', this.extraction.failedEvents.queueUrl, 'S3 events the extraction Lambda gave up on (replay after a fix)');
    out('ReconcilerFunctionName', this.reconciler.fn.functionName, 'Scheduled reconciler (re-queues or fails stranded jobs, reads the DLQ)');
    out('ClusterName', this.workers.cluster.clusterName, 'ECS cluster of the GPU workers');
    out('WorkerServiceName', this.workers.service.service.serviceName, 'ECS service of the GPU workers');
    out('AlarmTopicArn', this.monitoring.alarmTopic.topicArn, 'Subscribe to receive alarms');
    out('DashboardName', this.monitoring.dashboard.dashboardName, 'CloudWatch dashboard');
    out(ARCHIVE_OUTPUTS.profile, extractionProfile(extractRuntimeConfig(this.config)).id, 'Index profile (model id, inference settings, questions): part of every job id');
    out(ARCHIVE_OUTPUTS.stateMachine, this.backfill.stateMachine.stateMachineArn, 'Backfill state machine (`longsight index s3://… --stack`)');
    out(ARCHIVE_OUTPUTS.resultsBucket, this.indexResults.bucket.bucketName, 'Athena query results and backfill run results (expiring)');
    out(ARCHIVE_OUTPUTS.workGroup, this.answersQuery.workGroup.name, 'Athena workgroup for `longsight query --stack`');
    out(ARCHIVE_OUTPUTS.database, this.answersQuery.databaseName, 'Glue database holding the answers table');
    out(ARCHIVE_OUTPUTS.usdPerGpuHour, String(preferredUsdPerGpuHour(this.config)), "USD per GPU-hour of the preferred instance type in the environment's price table (cost estimates)");
    out(ARCHIVE_OUTPUTS.instanceType, this.config.gpu.instanceTypes[0], 'Preferred GPU instance type (what `longsight index --dry-run` prices jobs on)');
    out(ARCHIVE_OUTPUTS.jobsPerWorker, String(this.config.gpu.jobsPerWorker), 'Jobs one worker runs at once on its GPU');
  }
}
