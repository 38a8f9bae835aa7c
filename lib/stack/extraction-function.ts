/**
 * The frame-extraction Lambda: S3 ObjectCreated → probe + sample + decode frames with ffmpeg →
 * frames/<jobId>/ in the video bucket, the job item in DynamoDB, one message on the job queue.
 */
import { Duration, RemovalPolicy, Size, Stack, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { EnvironmentConfig, ExtractRuntimeConfig } from '../contracts/env-config';
import { ExtractRuntimeConfigSchema } from '../contracts/env-config';
import { ENV } from '../contracts/runtime-env';
import { FRAMES_PREFIX } from '../contracts/s3-layout';
import { FfmpegLayer, LAYER_FFMPEG_PATH, LAYER_FFPROBE_PATH } from './ffmpeg-layer';
import { NativeModulesLayer } from './native-modules-layer';
import { EXTRACT_HANDLER_ENTRY, REPO_ROOT } from './paths';

export interface ExtractionFunctionProps {
  config: EnvironmentConfig;
  removalPolicy: RemovalPolicy;
  videoBucket: s3.IBucket;
  jobsTable: dynamodb.ITable;
  jobQueue: sqs.IQueue;
}

/** The Lambda's runtime configuration, validated here with the schema the handler validates it with. */
export function extractRuntimeConfig(config: EnvironmentConfig): ExtractRuntimeConfig {
  return ExtractRuntimeConfigSchema.parse({
    extraction: config.extraction,
    inference: config.inference,
    questions: config.questions,
  });
}

export class ExtractionFunction extends Construct {
  readonly fn: nodejs.NodejsFunction;
  readonly logGroup: logs.LogGroup;
  /** S3 events the function failed on after Lambda's retries (the event itself, for replay). */
  readonly failedEvents: sqs.Queue;

  constructor(scope: Construct, id: string, props: ExtractionFunctionProps) {
    super(scope, id);
    const { config } = props;

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: config.retention.logRetentionDays as logs.RetentionDays,
      removalPolicy: props.removalPolicy,
    });

    // An own role with only what the handler does: no AWSLambdaBasicExecutionRole (it writes to any
    // log group in the account).
    const role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'Frame extraction: read uploads, write frames/, write job items, send job messages',
    });
    this.logGroup.grantWrite(role);

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

    const ffmpeg = new FfmpegLayer(this, 'Ffmpeg');
    const nativeModules = new NativeModulesLayer(this, 'NativeModules');

    this.fn = new nodejs.NodejsFunction(this, 'Function', {
      entry: EXTRACT_HANDLER_ENTRY,
      handler: 'handler',
      projectRoot: REPO_ROOT,
      depsLockFilePath: `${REPO_ROOT}/package-lock.json`,
      runtime: lambda.Runtime.NODEJS_22_X,
      // The layer's ffmpeg/ffprobe are linux-x64 builds.
      architecture: lambda.Architecture.X86_64,
      role,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      layers: [ffmpeg.layer, nativeModules.layer],
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
        [ENV.ffmpegPath]: LAYER_FFMPEG_PATH,
        [ENV.ffprobePath]: LAYER_FFPROBE_PATH,
        [ENV.logLevel]: 'info',
        NODE_OPTIONS: '--enable-source-maps',
      },
      bundling: {
        target: 'node22',
        minify: true,
        sourceMap: true,
        // Bundle the SDK versions the tests ran against instead of the runtime's copy.
        bundleAwsSDK: true,
        // Native add-ons (sharp) come from the native-modules layer. The handler finds ffmpeg through
        // FFMPEG_PATH/FFPROBE_PATH (the ffmpeg layer); the npm installer packages it falls back to
        // locally resolve a platform directory at run time and cannot be bundled.
        externalModules: [...nativeModules.externalModules, '@ffmpeg-installer/ffmpeg', '@ffprobe-installer/ffprobe'],
        forceDockerBundling: false,
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

    Validations.of(this.fn).acknowledge({
      id: 'AwsSolutions-L1',
      reason: 'Node.js 22 is the runtime the handler is bundled for (esbuild target node22) and tested on; moving to a newer runtime is a deliberate, tested change.',
    });
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
