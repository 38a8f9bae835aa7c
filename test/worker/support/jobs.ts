/**
 * Seeds jobs the way the extraction Lambda leaves them (frames + manifest in S3, job item QUEUED,
 * one job message on the queue), for worker tests that do not need ffmpeg. The e2e tests go
 * through the real Lambda instead.
 */
import { createHash, randomUUID } from 'node:crypto';
import sharp from 'sharp';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import {
  frameKey,
  framesPrefix,
  indexProfile,
  InferenceSettingsSchema,
  jobIdFor,
  manifestKey,
  mergeQuestions,
  serializeJobMessage,
  type InferenceSettingsInput,
  type JobMessage,
} from '../../../lib/contracts';
import type { AwsClients } from '../../../lib/aws-clients';

export interface SeedOptions {
  frames?: number;
  questions?: string[];
  settings?: InferenceSettingsInput;
  /** Replace frame i with these bytes (e.g. garbage, for a poison job). */
  corruptFrame?: Buffer;
  key?: string;
}

export interface SeededJob {
  jobId: string;
  message: JobMessage;
  body: string;
}

export async function frameJpeg(i: number, size = 384): Promise<Buffer> {
  return sharp({ create: { width: size, height: size, channels: 3, background: { r: (i * 53) % 256, g: (i * 97) % 256, b: 128 } } })
    .jpeg({ quality: 80 })
    .toBuffer();
}

export async function seedJob(clients: AwsClients, r: { bucket: string; queueUrl: string; jobsTable: string }, o: SeedOptions = {}, send = true): Promise<SeededJob> {
  const n = o.frames ?? 3;
  const key = o.key ?? `videos/${randomUUID()}.mp4`;
  const etag = createHash('md5').update(key).digest('hex');
  const settings = InferenceSettingsSchema.parse({ frames: n, maxNewTokens: 4, ...o.settings });
  const questions = mergeQuestions(o.questions ?? ['What happens in this video?', 'What colour dominates?']);
  const profile = indexProfile({ modelId: 'seeded', settings, questions: questions.map((q) => q.text) }).id;
  const jobId = jobIdFor({ bucket: r.bucket, key, etag }, profile);
  const frames = [];
  for (let i = 0; i < n; i++) {
    const k = frameKey(jobId, i, 'jpg');
    const body = i === 0 && o.corruptFrame ? o.corruptFrame : await frameJpeg(i);
    await clients.s3.send(new PutObjectCommand({ Bucket: r.bucket, Key: k, Body: body, ContentType: 'image/jpeg' }));
    frames.push({ index: i, timestamp: i * 0.5, key: k });
  }
  const video = { bucket: r.bucket, key, etag, sizeBytes: 1000 };
  const manifest = { schemaVersion: 1, jobId, video, durationSeconds: n * 0.5, width: 384, height: 384, format: 'jpeg', frames };
  await clients.s3.send(new PutObjectCommand({ Bucket: r.bucket, Key: manifestKey(jobId), Body: JSON.stringify(manifest), ContentType: 'application/json' }));
  const now = new Date().toISOString();
  await clients.ddb.send(
    new PutCommand({
      TableName: r.jobsTable,
      Item: {
        jobId,
        profile,
        videoUri: `s3://${r.bucket}/${key}`,
        video,
        status: 'QUEUED',
        attempts: 0,
        createdAt: now,
        updatedAt: now,
        frames: { count: n, manifestKey: manifestKey(jobId), durationSeconds: n * 0.5 },
        questions,
        settings,
        timings: { extractMs: 12 },
      },
    }),
  );
  const body = serializeJobMessage({
    schemaVersion: 1,
    jobId,
    profile,
    video,
    frames: { bucket: r.bucket, prefix: framesPrefix(jobId), manifestKey: manifestKey(jobId), count: n, width: 384, height: 384, format: 'jpeg', timestamps: frames.map((f) => f.timestamp) },
    questions,
    settings,
    enqueuedAt: now,
  });
  if (send) await clients.sqs.send(new SendMessageCommand({ QueueUrl: r.queueUrl, MessageBody: body }));
  return { jobId, message: JSON.parse(body) as JobMessage, body };
}
