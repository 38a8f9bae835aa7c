/** The bucket that receives S3 server access logs and VPC flow logs (never the data itself). */
import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';

export interface AccessLogBucketProps {
  removalPolicy: RemovalPolicy;
  /** Access logs are kept this long (the environment's log retention). */
  retentionDays: number;
}

export class AccessLogBucket extends Construct {
  readonly bucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: AccessLogBucketProps) {
    super(scope, id);
    this.bucket = new s3.Bucket(this, 'Bucket', {
      // S3 server access logging delivers only to SSE-S3 encrypted buckets.
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
      removalPolicy: props.removalPolicy,
      // No autoDeleteObjects: its custom resource needs s3:DeleteObject*/List* on the bucket, the
      // wildcard data rights this stack avoids. Empty the bucket before `cdk destroy` (README).
      lifecycleRules: [{ id: 'expire-logs', expiration: Duration.days(props.retentionDays) }],
    });
    Validations.of(this.bucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason: 'This is the access-log destination itself; logging its own access would log the log writes in a loop.',
    });
  }
}
