/**
 * The S3 ObjectCreated notification for an upload, exactly as S3 delivers it to Lambda
 * (notification-content-structure, eventVersion 2.1): one record, the key URL-encoded form-style
 * (space → '+', '/' kept), the eTag without quotes, versionId only on versioned buckets.
 */
export interface UploadedObject {
  bucket: string;
  key: string;
  size: number;
  etag: string;
  versionId?: string;
}

export function encodeEventKey(key: string): string {
  return encodeURIComponent(key).replace(/%20/g, '+').replace(/%2F/g, '/');
}

let sequence = 0;

export function objectCreatedEvent(obj: UploadedObject, region = process.env.AWS_REGION ?? 'us-east-1') {
  sequence += 1;
  return {
    Records: [
      {
        eventVersion: '2.1',
        eventSource: 'aws:s3',
        awsRegion: region,
        eventTime: new Date().toISOString(),
        eventName: 'ObjectCreated:Put',
        userIdentity: { principalId: 'AWS:LONGSIGHTLOCAL' },
        requestParameters: { sourceIPAddress: '127.0.0.1' },
        responseElements: { 'x-amz-request-id': `LOCAL${sequence}`, 'x-amz-id-2': 'longsight-local' },
        s3: {
          s3SchemaVersion: '1.0',
          configurationId: 'longsight-extract',
          bucket: { name: obj.bucket, ownerIdentity: { principalId: 'LONGSIGHTLOCAL' }, arn: `arn:aws:s3:::${obj.bucket}` },
          object: {
            key: encodeEventKey(obj.key),
            size: obj.size,
            eTag: obj.etag.replace(/"/g, ''),
            ...(obj.versionId && obj.versionId !== 'null' ? { versionId: obj.versionId } : {}),
            sequencer: (Date.now() * 1000 + sequence).toString(16).toUpperCase(),
          },
        },
      },
    ],
  };
}
