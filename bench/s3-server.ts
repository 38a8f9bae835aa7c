/**
 * The embedded S3 server for bench:extract, in its own process: holding gigabytes of video, it
 * would make every ffmpeg the benchmark starts pay for forking a process that size (the Lambda
 * holds no video). Uploads the files given as arguments, prints one JSON line
 * {"urls": {file: presigned URL}}, and serves until its stdin closes.
 */
import { basename } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { startLocalAws } from '../test/support/local-aws';
import { uploadObject } from '../test/support/s3-upload';

async function main(files: string[]): Promise<void> {
  const local = await startLocalAws();
  const urls: Record<string, string> = {};
  for (const file of files) {
    process.stderr.write(`uploading ${basename(file)} to the embedded S3 server...\n`);
    const up = await uploadObject(local.clients.s3, local.resources.bucket, `bench/${basename(file)}`, file);
    urls[file] = await getSignedUrl(local.clients.s3, new GetObjectCommand({ Bucket: up.bucket, Key: up.key }), { expiresIn: 12 * 3600 });
  }
  process.stdout.write(JSON.stringify({ urls }) + '\n');
  process.stdin.resume();
  process.stdin.on('end', () => void local.stop().then(() => process.exit(0)));
}

void main(process.argv.slice(2));
