/**
 * `longsight ask <jobId> "question" ["question" …]`: new questions about an already-extracted
 * video, without extracting it again. A new job (kind 'ask') is queued that reads the original
 * job's frames; its id is derived from the original job, the questions and the settings, so asking
 * the same thing twice is one job (use --again for a fresh run).
 */
import { createHash, randomUUID } from 'node:crypto';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { DeleteCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import {
  FrameManifestSchema,
  framesRefFromManifest,
  InferenceSettingsSchema,
  JOB_ID_PATTERN,
  mergeQuestions,
  parseOrThrow,
  serializeJobMessage,
  type InferenceSettings,
  type JobItem,
} from '../../../lib/contracts';
import type { TargetOptions } from '../../local/targets';
import { answersOfJob, getJob } from '../../local/job-queries';
import { formatJob } from '../../local/job-report';
import { CliError, EXIT } from '../exit-codes';
import { connect } from '../target-options';

export interface AskOptions extends TargetOptions {
  maxNewTokens?: number;
  again?: boolean;
  wait?: boolean;
  timeout?: number;
  json?: boolean;
}

export function askJobId(parentJobId: string, questionIds: string[], settings: InferenceSettings, nonce = ''): string {
  const h = createHash('sha256').update(`ask\n${parentJobId}\n${questionIds.join(',')}\n${JSON.stringify(settings)}\n${nonce}`).digest('hex');
  return `j-${h.slice(0, 32)}`;
}

export async function askCommand(parentJobId: string, texts: string[], o: AskOptions, print: (s: string) => void): Promise<number> {
  if (!JOB_ID_PATTERN.test(parentJobId)) throw new CliError(`"${parentJobId}" is not a job id (j- and 32 hex digits)`, EXIT.usage);
  let questions;
  try {
    questions = mergeQuestions(texts);
  } catch (e) {
    throw new CliError(`bad question: ${(e as Error).message}`, EXIT.usage);
  }
  const t = await connect(o);
  try {
    const parent = await getJob(t.clients.ddb, t.resources.jobsTable, parentJobId);
    if (!parent) throw new CliError(`no job ${parentJobId} (${t.source})`, EXIT.notFound);
    if (!parent.frames) throw new CliError(`job ${parentJobId} has no extracted frames to ask about (it is ${parent.status}${parent.reason ? `: ${parent.reason}` : ''})`);
    const bucket = parent.video.bucket;
    const manifestKey = parent.frames.manifestKey;
    let manifest;
    try {
      const r = await t.clients.s3.send(new GetObjectCommand({ Bucket: bucket, Key: manifestKey }));
      manifest = parseOrThrow(FrameManifestSchema, JSON.parse(await r.Body!.transformToString()), 'frame manifest');
    } catch (e) {
      throw new CliError(`cannot read the frames of job ${parentJobId} at s3://${bucket}/${manifestKey}: ${(e as Error).message} (frames expire after the environment's frameExpiryDays; upload the video again)`);
    }
    const settings = InferenceSettingsSchema.parse({ ...parent.settings, ...(o.maxNewTokens ? { maxNewTokens: o.maxNewTokens } : {}) });
    const jobId = askJobId(parentJobId, questions.map((q) => q.id), settings, o.again ? randomUUID() : '');
    const now = new Date().toISOString();
    const item: JobItem = {
      jobId,
      videoUri: parent.videoUri,
      video: parent.video,
      status: 'QUEUED',
      attempts: 0,
      createdAt: now,
      updatedAt: now,
      // Sent right below (and the item taken back if that fails): the reconciler treats it as enqueued.
      enqueuedAt: now,
      frames: { count: manifest.frames.length, manifestKey, durationSeconds: manifest.durationSeconds },
      questions,
      settings,
      timings: {},
    };
    let created = true;
    try {
      await t.clients.ddb.send(new PutCommand({ TableName: t.resources.jobsTable, Item: item, ConditionExpression: 'attribute_not_exists(jobId)' }));
    } catch (e) {
      if ((e as { name?: string }).name !== 'ConditionalCheckFailedException') throw e;
      created = false;
    }
    if (created) {
      const body = serializeJobMessage({
        schemaVersion: 1,
        kind: 'ask',
        jobId,
        video: parent.video,
        frames: framesRefFromManifest(bucket, manifestKey, manifest),
        questions,
        settings,
        enqueuedAt: now,
      });
      try {
        await t.clients.sqs.send(new SendMessageCommand({ QueueUrl: t.resources.queueUrl, MessageBody: body }));
      } catch (e) {
        // No message, no worker: take the QUEUED item back so that asking again queues it (not "already asked").
        await t.clients.ddb
          .send(new DeleteCommand({ TableName: t.resources.jobsTable, Key: { jobId }, ConditionExpression: '#s = :queued AND attempts = :zero', ExpressionAttributeNames: { '#s': 'status' }, ExpressionAttributeValues: { ':queued': 'QUEUED', ':zero': 0 } }))
          .catch(() => undefined);
        throw new CliError(`could not queue job ${jobId} on ${t.resources.queueUrl}: ${(e as Error).message}`);
      }
      print(o.json ? JSON.stringify({ jobId, status: 'QUEUED', parentJobId }) : `queued job ${jobId} (${questions.length} question${questions.length === 1 ? '' : 's'} about ${parent.videoUri}, frames of ${parentJobId})`);
    } else {
      const existing = await getJob(t.clients.ddb, t.resources.jobsTable, jobId);
      print(o.json ? JSON.stringify({ jobId, status: existing?.status, parentJobId, existing: true }) : `already asked: job ${jobId} is ${existing?.status} (pass --again to run it again)`);
    }
    if (!o.wait) return EXIT.ok;
    const deadline = Date.now() + (o.timeout ?? 600) * 1000;
    for (;;) {
      const job = await getJob(t.clients.ddb, t.resources.jobsTable, jobId);
      if (job && (job.status === 'DONE' || job.status === 'FAILED')) {
        const answers = job.status === 'DONE' ? await answersOfJob(t.clients.ddb, t.resources.answersTable, jobId) : [];
        print(o.json ? JSON.stringify({ jobId, status: job.status, reason: job.reason, answers: answers.map((a) => ({ question: a.question, answer: a.answer })) }) : formatJob(job, answers));
        return job.status === 'DONE' ? EXIT.ok : EXIT.failed;
      }
      if (Date.now() > deadline) throw new CliError(`job ${jobId} not finished after ${o.timeout ?? 600} s (it is ${job?.status ?? 'missing'}); check later with \`longsight status ${jobId}\``);
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    await t.close();
  }
}
