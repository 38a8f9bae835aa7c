/**
 * The video bucket: uploads land anywhere in it, Longsight writes only under `frames/<jobId>/`.
 * An upload whose key ends in a video suffix (any case) triggers the frame-extraction Lambda.
 */
import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3n from 'aws-cdk-lib/aws-s3-notifications';
import { Construct } from 'constructs';
import { FRAMES_PREFIX, suffixCaseVariants } from '../contracts/s3-layout';

export interface VideoBucketProps {
  removalPolicy: RemovalPolicy;
  /** Frames are derived data: they expire after this many days (the video and the answers stay). */
  frameExpiryDays: number;
  /** Where S3 server access logs go. */
  accessLogBucket: s3.IBucket;
}

export class VideoBucket extends Construct {
  readonly bucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: VideoBucketProps) {
    super(scope, id);
    this.bucket = new s3.Bucket(this, 'Bucket', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      // Versioned: a re-upload of the same key is a new version and therefore a new job (the job id
      // hashes bucket, key and version id), and an overwritten video can still be answered for.
      versioned: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: props.accessLogBucket,
      serverAccessLogsPrefix: 'video-bucket/',
      removalPolicy: props.removalPolicy,
      lifecycleRules: [
        {
          id: 'expire-frames',
          prefix: FRAMES_PREFIX,
          expiration: Duration.days(props.frameExpiryDays),
          // Frames are overwritten by index on a retried extraction: old versions are noise.
          noncurrentVersionExpiration: Duration.days(1),
        },
        { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(7) },
      ],
    });
  }

  /**
   * Sends ObjectCreated events for video keys to `fn`. S3 suffix filters are case-sensitive and one
   * filter holds one suffix, so each case variant of each suffix is its own notification.
   */
  notifyOnVideoUpload(fn: lambda.IFunction): void {
    const destination = new s3n.LambdaDestination(fn);
    for (const suffix of suffixCaseVariants()) {
      this.bucket.addEventNotification(s3.EventType.OBJECT_CREATED, destination, { suffix });
    }
    // CDK configures bucket notifications through its own singleton custom-resource Lambda.
    const handler = Stack.of(this).node.children.find((c) => c.node.id.startsWith('BucketNotificationsHandler'));
    if (handler) {
      Validations.of(handler).acknowledge({
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        reason: "CDK's bucket-notifications custom resource (runs at deploy time only) logs with the basic execution policy; its only other right is s3:PutBucketNotification.",
      });
    }
  }
}
