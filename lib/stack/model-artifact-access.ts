/**
 * Read access to the converted model package, an existing S3 location named in the environment
 * config (`model.artifactUri`). Only the GPU workers' task role gets it.
 */
import { Aws, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { IConstruct } from 'constructs';

export interface S3Location {
  bucket: string;
  /** Key prefix, '' for the whole bucket, otherwise ending in '/'. */
  prefix: string;
}

/** s3://bucket/some/prefix → { bucket, prefix: 'some/prefix/' } (the URI names a folder). */
export function parseS3Uri(uri: string): S3Location {
  const match = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(uri);
  if (!match) throw new Error(`model.artifactUri: "${uri}" is not an S3 URI like s3://bucket/prefix/`);
  const rest = match[2] ?? '';
  const prefix = rest === '' || rest.endsWith('/') ? rest : `${rest}/`;
  return { bucket: match[1], prefix };
}

/**
 * Grants s3:GetObject under the prefix and s3:ListBucket limited to it (the worker lists the package
 * to compare hashes with its local cache). Acknowledges the one wildcard this needs on `acknowledgeOn`.
 */
export function grantModelArtifactRead(grantee: iam.IGrantable, artifactUri: string, acknowledgeOn: IConstruct): iam.Grant {
  const { bucket, prefix } = parseS3Uri(artifactUri);
  const bucketArn = `arn:${Aws.PARTITION}:s3:::${bucket}`;
  const grant = iam.Grant.addToPrincipal({
    grantee,
    actions: ['s3:GetObject'],
    resourceArns: [`${bucketArn}/${prefix}*`],
  });
  iam.Grant.addToPrincipal({
    grantee,
    actions: ['s3:ListBucket'],
    resourceArns: [bucketArn],
    conditions: { StringLike: { 's3:prefix': [`${prefix}*`] } },
  });
  Validations.of(acknowledgeOn).acknowledge({
    id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::${bucket}/${prefix}*]`,
    reason: `The model package is every object under ${artifactUri} (weights shards, tokenizer, configs); read-only.`,
  });
  return grant;
}
