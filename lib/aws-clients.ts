/**
 * The AWS SDK v3 clients, with default configuration: region, credentials and endpoints come
 * from the environment, so the same code talks to AWS, LocalStack or the embedded local servers
 * (AWS_ENDPOINT_URL_S3 / _SQS / _DYNAMODB). The one addition: path-style S3 addressing when an
 * S3 endpoint override is set, since local servers do not serve virtual-hosted buckets.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

export interface AwsClients {
  s3: S3Client;
  sqs: SQSClient;
  ddb: DynamoDBDocumentClient;
}

/**
 * Whether an S3 error means "no such object (or version)": GetObject names it NoSuchKey or
 * NoSuchVersion, HeadObject (no body to carry a code) only NotFound / HTTP 404.
 */
export function isS3NotFound(e: unknown): boolean {
  const name = (e as { name?: string } | undefined)?.name;
  const status = (e as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
  return name === 'NoSuchKey' || name === 'NoSuchVersion' || name === 'NotFound' || status === 404;
}

export function createAwsClients(env: NodeJS.ProcessEnv = process.env): AwsClients {
  const forcePathStyle = Boolean(env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL) || env.LONGSIGHT_S3_PATH_STYLE === '1';
  const s3 = new S3Client({ forcePathStyle });
  const sqs = new SQSClient({});
  const ddb = DynamoDBDocumentClient.from(new DynamoDBClient({}), {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
  });
  return { s3, sqs, ddb };
}
