/**
 * Where the archive side writes what it produces in passing: Athena query results (`athena/`) and
 * the backfill's map-run results (`backfill/<execution>/`). Encrypted, private, TLS only, logged,
 * and expiring: nothing in it is the record (the answers are in DynamoDB and the export).
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';

export interface IndexResultsBucketProps {
  removalPolicy: RemovalPolicy;
  expiryDays: number;
  accessLogBucket: s3.IBucket;
}

export class IndexResultsBucket extends Construct {
  readonly bucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: IndexResultsBucketProps) {
    super(scope, id);
    this.bucket = new s3.Bucket(this, 'Bucket', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: props.accessLogBucket,
      serverAccessLogsPrefix: 'index-results-bucket/',
      removalPolicy: props.removalPolicy,
      lifecycleRules: [
        { id: 'expire-results', expiration: Duration.days(props.expiryDays) },
        { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
    });
  }
}
