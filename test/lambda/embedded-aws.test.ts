/**
 * The embedded servers behave like AWS where Longsight relies on them: presigned GET with Range
 * (ffmpeg's seeks), multipart upload, SQS redrive to the DLQ, DynamoDB conditional writes and GSIs.
 * Where they differ (no S3 versioning on fauxqs), the test pins the difference so a change is noticed.
 */
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { provisionLongsight } from '../../container/local/embedded-aws';
import { startLocalAws, type LocalAws } from '../support/local-aws';
import { uploadObject } from '../support/s3-upload';

let local: LocalAws;
beforeAll(async () => {
  local = await startLocalAws({ visibilityTimeoutSeconds: 1, maxReceiveCount: 2 });
}, 30000);
afterAll(async () => {
  await local?.stop();
});

test('endpoints are loopback and the environment points the SDK at them', () => {
  expect(local.aws.endpoints.s3).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  expect(local.aws.endpoints.dynamodb).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  expect(process.env.AWS_ENDPOINT_URL_S3).toBe(local.aws.endpoints.s3);
  expect(local.resources.queueUrl.startsWith(local.aws.endpoints.sqs)).toBe(true);
});

test('provisioning is idempotent', async () => {
  const again = await provisionLongsight(local.clients, undefined, { visibilityTimeoutSeconds: 1, maxReceiveCount: 2 });
  expect(again).toEqual(local.resources);
});

test('fauxqs has no bucket versioning: reported, and objects carry no version id', async () => {
  expect(local.resources.versioning).toBe('unsupported');
  const put = await local.clients.s3.send(new PutObjectCommand({ Bucket: local.resources.bucket, Key: 'v.bin', Body: 'one' }));
  expect(put.VersionId).toBeUndefined();
  expect(put.ETag).toMatch(/^"[0-9a-f]{32}"$/);
});

test('presigned GET URLs serve byte ranges (what ffmpeg does when it seeks)', async () => {
  const body = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
  await local.clients.s3.send(new PutObjectCommand({ Bucket: local.resources.bucket, Key: 'dir with space/ü.bin', Body: body }));
  const url = await getSignedUrl(local.clients.s3, new GetObjectCommand({ Bucket: local.resources.bucket, Key: 'dir with space/ü.bin' }), { expiresIn: 60 });
  const res = await fetch(url, { headers: { Range: 'bytes=100-199' } });
  expect(res.status).toBe(206);
  expect(res.headers.get('content-range')).toBe('bytes 100-199/1000');
  expect(Buffer.from(await res.arrayBuffer())).toEqual(body.subarray(100, 200));
});

test('objects over the 11 MiB request cap upload as multipart', async () => {
  const big = Buffer.alloc(20 * 1024 * 1024, 7);
  big[big.length - 1] = 9;
  const up = await uploadObject(local.clients.s3, local.resources.bucket, 'big.bin', big);
  expect(up.size).toBe(big.length);
  const url = await getSignedUrl(local.clients.s3, new GetObjectCommand({ Bucket: up.bucket, Key: up.key }), { expiresIn: 60 });
  const res = await fetch(url, { headers: { Range: `bytes=${big.length - 2}-` } });
  expect([...Buffer.from(await res.arrayBuffer())]).toEqual([7, 9]);
});

test('a message received maxReceiveCount times moves to the DLQ', async () => {
  const { queueUrl, dlqUrl } = local.resources;
  await local.clients.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'poison' }));
  let receives = 0;
  for (let i = 0; i < 4; i++) {
    const r = await local.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 2, VisibilityTimeout: 1 }));
    receives += r.Messages?.length ?? 0;
  }
  expect(receives).toBe(2);
  const dlq = await local.clients.sqs.send(new ReceiveMessageCommand({ QueueUrl: dlqUrl, WaitTimeSeconds: 1 }));
  expect(dlq.Messages?.map((m) => m.Body)).toEqual(['poison']);
}, 30000);

test('DynamoDB: conditional writes and the byStatus / byVideo GSIs', async () => {
  const { jobsTable, answersTable } = local.resources;
  const item = { jobId: 'j-1', status: 'QUEUED', updatedAt: '2026-01-01T00:00:00.000Z', videoUri: 's3://b/k.mp4', createdAt: '2026-01-01T00:00:00.000Z' };
  await local.clients.ddb.send(new PutCommand({ TableName: jobsTable, Item: item, ConditionExpression: 'attribute_not_exists(jobId)' }));
  await expect(
    local.clients.ddb.send(new PutCommand({ TableName: jobsTable, Item: item, ConditionExpression: 'attribute_not_exists(jobId)' })),
  ).rejects.toMatchObject({ name: 'ConditionalCheckFailedException' });
  const byStatus = await local.clients.ddb.send(
    new QueryCommand({ TableName: jobsTable, IndexName: 'byStatus', KeyConditionExpression: '#s = :s', ExpressionAttributeNames: { '#s': 'status' }, ExpressionAttributeValues: { ':s': 'QUEUED' } }),
  );
  expect(byStatus.Items?.map((i) => i.jobId)).toEqual(['j-1']);
  await local.clients.ddb.send(new PutCommand({ TableName: answersTable, Item: { jobId: 'j-1', questionId: 'q-1', videoUri: 's3://b/k.mp4', answeredAt: '2026-01-01T00:00:01.000Z' } }));
  const byVideo = await local.clients.ddb.send(
    new QueryCommand({ TableName: answersTable, IndexName: 'byVideo', KeyConditionExpression: 'videoUri = :v', ExpressionAttributeValues: { ':v': 's3://b/k.mp4' } }),
  );
  expect(byVideo.Items?.map((i) => i.questionId)).toEqual(['q-1']);
});
