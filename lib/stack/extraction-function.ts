/**
 * The frame-extraction Lambda: S3 ObjectCreated → probe + sample + decode frames with ffmpeg →
 * frames/<jobId>/ in the video bucket, the job item in DynamoDB, one message on the job queue.
 * A container image (lambda/extract-frames/Dockerfile, extraction-image.ts): it carries the pinned,
 * maintained ffmpeg release that parses the untrusted uploads, and sharp.
 */
import { Duration, RemovalPolicy, Size, Stack, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { extractRuntimeConfigOf, type EnvironmentConfig, type ExtractRuntimeConfig } from '../contracts/env-config';
import { ENV } from '../contracts/runtime-env';
import { FRAMES_PREFIX } from '../contracts/s3-layout';
import { EXTRACT_DOCKERFILE, ffmpegBuildArgs, IMAGE_FFMPEG_PATH, IMAGE_FFPROBE_PATH } from './extraction-image';
import { functionRoleAndLogs } from './function-role';
import { DOCKER_CONTEXT_EXCLUDE, REPO_ROOT } from './paths';

export interface ExtractionFunctionProps {
  config: EnvironmentConfig;
  removalPolicy: RemovalPolicy;
  videoBucket: s3.IBucket;
  jobsTable: dynamodb.ITable;
  jobQueue: sqs.IQueue;
}

/** The Lambda's runtime configuration, validated here with the schema the handler validates it with. */
export function extractRuntimeConfig(config: EnvironmentConfig): ExtractRuntimeConfig {
  return extractRuntimeConfigOf(config);
}

export class ExtractionFunction extends Construct {
  readonly fn: lambda.DockerImageFunction;
  readonly logGroup: logs.LogGroup;
  /** S3 events the function failed on after Lambda's retries (the event itself, for replay). */
  readonly failedEvents: sqs.Queue;

  constructor(scope: Construct, id: string, props: ExtractionFunctionProps) {
    super(scope, id);
    const { config } = props;

    const { role, logGroup } = functionRoleAndLogs(this, {
      description: 'Frame extraction: read uploads, write frames/, write job items, send job messages',
      retentionDays: config.retention.logRetentionDays,
      removalPolicy: props.removalPolicy,
    });
    this.logGroup = logGroup;

    // S3 invokes the function asynchronously: an event that still fails after Lambda's two retries
    // (a transient error that outlasted them) would otherwise be dropped, and with it the job.
    this.failedEvents = new sqs.Queue(this, 'FailedEvents', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
      removalPolicy: props.removalPolicy,
    });
    Validations.of(this.failedEvents).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: "This queue is itself a dead-letter queue: the extraction Lambda's on-failure target for S3 events; nothing consumes it automatically.",
    });

    this.fn = new lambda.DockerImageFunction(this, 'Function', {
      // Built by `cdk deploy` (Docker); synth only hashes the build context.
      code: lambda.DockerImageCode.fromImageAsset(REPO_ROOT, {
        file: EXTRACT_DOCKERFILE,
        exclude: DOCKER_CONTEXT_EXCLUDE,
        platform: Platform.LINUX_AMD64,
        buildArgs: ffmpegBuildArgs(),
      }),
      // The image's ffmpeg/ffprobe are linux-x64 builds.
      architecture: lambda.Architecture.X86_64,
      role,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      // Sized for 256 frames sampled from a 2-hour 1080p video (cdk.json and the schema defaults;
      // figures from `npm run bench:extract`, BENCHMARKS.md "Lambda sizing"):
      // - the work is CPU: one ffmpeg per vCPU; a 1080p seek measured 0.4 CPU-s (0.24 of it decoding
      //   half a 10 s keyframe interval); allowing camera footage 3x the decode, ~0.9 s: 256 seeks
      //   ~ 225 CPU-seconds, 1024 frames (a sidecar's maximum) ~ 900;
      // - memory: 7076 MB buys 4 vCPUs (Lambda: one per 1769 MB): ~56 s / ~225 s of wall time. The
      //   bytes needed are < 1 GB (our process peaked at 156 MB, PNG frames up to ~250 KB each,
      //   ffmpeg ~40 MB per 1080p decode), so
      //   the memory is for the CPUs; GB-seconds stay about the same as with fewer vCPUs for longer;
      // - timeout: the maximum, 900 s, 4x the 1024-frame estimate; the job's extraction lease
      //   lasts the invocation's remaining time;
      // - ephemeral storage: the minimum, 512 MB: the video streams through a presigned URL and the
      //   frames stay in memory, nothing is written to /tmp.
      memorySize: config.lambda.memoryMiB,
      timeout: Duration.seconds(config.lambda.timeoutSeconds),
      ephemeralStorageSize: Size.mebibytes(config.lambda.ephemeralStorageMiB),
      // Bounds the load a bulk upload puts on DynamoDB/SQS and on the account's concurrency pool;
      // S3 retries throttled async invocations for up to 6 hours.
      reservedConcurrentExecutions: config.lambda.reservedConcurrency,
      retryAttempts: 2,
      deadLetterQueue: this.failedEvents,
      environment: {
        [ENV.extractConfig]: JSON.stringify(extractRuntimeConfig(config)),
        [ENV.jobsTable]: props.jobsTable.tableName,
        [ENV.queueUrl]: props.jobQueue.queueUrl,
        [ENV.videoBucket]: props.videoBucket.bucketName,
        // The image sets them too; stated here so the function's configuration says which binaries run.
        [ENV.ffmpegPath]: IMAGE_FFMPEG_PATH,
        [ENV.ffprobePath]: IMAGE_FFPROBE_PATH,
        [ENV.logLevel]: 'info',
      },
    });

    // Least privilege, per action the handler performs (explicit actions, no wildcards):
    // read the uploaded video (any version) and its optional sidecar anywhere in the bucket,
    iam.Grant.addToPrincipal({
      grantee: this.fn,
      actions: ['s3:GetObject', 's3:GetObjectVersion'],
      resourceArns: [props.videoBucket.arnForObjects('*')],
    });
    // tell a missing sidecar from a denied one (without s3:ListBucket, S3 answers a GET for a
    // missing key with 403 instead of 404; the function may read every key anyway),
    iam.Grant.addToPrincipal({
      grantee: this.fn,
      actions: ['s3:ListBucket'],
      resourceArns: [props.videoBucket.bucketArn],
    });
    // write and clean its frames (a retried attempt removes a failed attempt's leftovers),
    iam.Grant.addToPrincipal({
      grantee: this.fn,
      actions: ['s3:PutObject', 's3:DeleteObject'],
      resourceArns: [props.videoBucket.arnForObjects(`${FRAMES_PREFIX}*`)],
    });
    // write the job item (conditional put/update; read for idempotency), send the job message.
    iam.Grant.addToPrincipal({
      grantee: this.fn,
      actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
      resourceArns: [props.jobsTable.tableArn],
    });
    props.jobQueue.grantSendMessages(this.fn);

    Validations.of(role).acknowledge(
      {
        id: `AwsSolutions-IAM5[Resource::<${this.logicalIdOf(props.videoBucket)}.Arn>/*]`,
        reason: 'Uploads may be anywhere in the video bucket (the S3 notification decides which keys reach the function); it reads only s3:GetObject/GetObjectVersion.',
      },
      {
        id: `AwsSolutions-IAM5[Resource::<${this.logicalIdOf(props.videoBucket)}.Arn>/${FRAMES_PREFIX}*]`,
        reason: 'Frame keys are frames/<jobId>/..., named at run time from the job id; writes are limited to that prefix.',
      },
    );
  }

  private logicalIdOf(bucket: s3.IBucket): string {
    return Stack.of(this).getLogicalId(bucket.node.defaultChild as s3.CfnBucket);
  }
}
