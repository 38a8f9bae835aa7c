/**
 * Uploads a file or buffer with the SDK's managed uploader (@aws-sdk/lib-storage): multipart above
 * 5 MiB, which the local S3 server needs (it caps one request body at 11 MiB) and AWS needs above 5 GiB.
 */
import { createReadStream, statSync } from 'node:fs';
import { Upload } from '@aws-sdk/lib-storage';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';

export interface UploadedObject {
  bucket: string;
  key: string;
  size: number;
  /** As S3 returns it, with quotes. */
  etag: string;
  versionId?: string;
}

export async function uploadObject(s3: S3Client, bucket: string, key: string, body: string | Buffer, opts: { contentType?: string; onProgress?: (loaded: number, total?: number) => void } = {}): Promise<UploadedObject> {
  const isPath = typeof body === 'string';
  const upload = new Upload({
    client: s3,
    params: {
      Bucket: bucket,
      Key: key,
      Body: isPath ? createReadStream(body) : body,
      ContentType: opts.contentType ?? 'application/octet-stream',
      ...(isPath ? { ContentLength: statSync(body).size } : {}),
    },
    partSize: 8 * 1024 * 1024,
    queueSize: 4,
  });
  if (opts.onProgress) upload.on('httpUploadProgress', (p) => opts.onProgress!(p.loaded ?? 0, p.total));
  await upload.done();
  // The ETag and version of what is now stored (a multipart ETag is not the MD5 of the file).
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  return { bucket, key, size: head.ContentLength ?? 0, etag: head.ETag ?? '', versionId: head.VersionId };
}
