/**
 * Uploads a local file with the SDK's managed uploader (multipart above 8 MiB: the embedded S3
 * server caps one request at 11 MiB, AWS single PUTs at 5 GiB) and returns what the S3 event
 * will carry: size, ETag and version id of the stored object.
 */
import { createReadStream, statSync } from 'node:fs';
import { Upload } from '@aws-sdk/lib-storage';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { StoredObject as UploadedObject } from '../../lambda/extract-frames/s3-event';

export async function uploadFile(s3: S3Client, bucket: string, key: string, file: string, contentType: string): Promise<UploadedObject> {
  const upload = new Upload({
    client: s3,
    params: { Bucket: bucket, Key: key, Body: createReadStream(file), ContentType: contentType, ContentLength: statSync(file).size },
    partSize: 8 * 1024 * 1024,
    queueSize: 4,
  });
  await upload.done();
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  return { bucket, key, size: head.ContentLength ?? 0, etag: head.ETag ?? '', versionId: head.VersionId };
}
