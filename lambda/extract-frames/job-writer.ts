/**
 * The job's DynamoDB item and its SQS message, written in an order that loses nothing on a crash:
 *
 *  1. claim   PutItem status QUEUED + extractLease{token, until}, only if no item exists, or the
 *             existing one was never enqueued, is still QUEUED, and its lease has lapsed.
 *             A duplicated or concurrent event fails this condition and does nothing.
 *  2. (frames and manifest are written to S3 under keys fixed by index; the manifest last)
 *  3. ready   UpdateItem frames/questions/settings/timings, only while we hold the lease.
 *  4. send    SendMessage (the versioned job message, validated).
 *  5. enqueued UpdateItem enqueuedAt, REMOVE extractLease, only while we hold the lease.
 *
 *  A crash before 4 leaves a lapsed lease and no message: S3/Lambda's retry re-claims and redoes
 *  the work (frame keys are overwritten). A crash between 4 and 5 is the one window that can send
 *  a second message on retry; the worker takes each job once (conditional QUEUED → RUNNING), so a
 *  duplicate message is harmless, while a lost message would strand the job. Permanent input errors
 *  set FAILED (with the reason) under the lease and send nothing; so does a message body the queue
 *  refuses (it would be refused again on every retry, each re-extracting all frames).
 */
import { randomUUID } from 'node:crypto';
import { GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { JobItemSchema, type JobItem, type Timings } from '../../lib/contracts/items';
import { JOB_MESSAGE_SCHEMA_VERSION, serializeJobMessage, type FramesRef, type JobMessageInput, type VideoRef } from '../../lib/contracts/job-message';
import type { Question } from '../../lib/contracts/questions';
import type { InferenceSettings } from '../../lib/contracts/settings';
import { parseOrThrow } from '../../lib/contracts/validate';
import { PermanentInputError } from './failure-reasons';

export interface JobStoreDeps {
  ddb: DynamoDBDocumentClient;
  sqs: SQSClient;
  jobsTable: string;
  queueUrl: string;
  now?: () => Date;
}

export type ClaimResult =
  | { claimed: true; token: string; item: JobItem }
  /** Someone else has (or had) this job: `status` and whether it was enqueued say which. */
  | { claimed: false; existing?: Pick<JobItem, 'status' | 'enqueuedAt' | 'reason'> & { leaseHeld: boolean } };

function isConditionFailure(e: unknown): boolean {
  return (e as { name?: string })?.name === 'ConditionalCheckFailedException';
}

/** SQS refusing the message body itself (its characters or its size): the same body would be refused again. */
export function isContentRejection(e: unknown): boolean {
  const name = (e as { name?: string })?.name ?? '';
  return ['InvalidMessageContents', 'MessageTooLong', 'InvalidParameterValue'].includes(name);
}

export class LeaseLostError extends Error {
  constructor(jobId: string, step: string) {
    super(`job ${jobId}: the extraction lease was taken over before "${step}" (another attempt owns the job now)`);
    this.name = 'LeaseLostError';
  }
}

export function createJobStore(deps: JobStoreDeps) {
  const now = deps.now ?? (() => new Date());
  const iso = () => now().toISOString();

  async function read(jobId: string): Promise<JobItem | undefined> {
    const r = await deps.ddb.send(new GetCommand({ TableName: deps.jobsTable, Key: { jobId }, ConsistentRead: true }));
    return r.Item as JobItem | undefined;
  }

  /** One UpdateItem that applies only while `token` holds the extraction lease; LeaseLostError otherwise. */
  async function underLease(jobId: string, token: string, step: string, updateExpression: string, values: Record<string, unknown>, names: Record<string, string> = {}): Promise<void> {
    try {
      await deps.ddb.send(
        new UpdateCommand({
          TableName: deps.jobsTable,
          Key: { jobId },
          UpdateExpression: updateExpression,
          ConditionExpression: 'extractLease.#token = :token',
          ExpressionAttributeNames: { ...names, '#token': 'token' },
          ExpressionAttributeValues: { ...values, ':token': token },
        }),
      );
    } catch (e) {
      if (isConditionFailure(e)) throw new LeaseLostError(jobId, step);
      throw e;
    }
  }

  return {
    read,

    async claim(input: { jobId: string; profile: string; videoUri: string; video: VideoRef; questions: Question[]; settings: InferenceSettings; leaseMs: number }): Promise<ClaimResult> {
      const token = randomUUID();
      const at = iso();
      const item = parseOrThrow(
        JobItemSchema,
        {
          jobId: input.jobId,
          profile: input.profile,
          videoUri: input.videoUri,
          video: input.video,
          status: 'QUEUED',
          attempts: 0,
          createdAt: at,
          updatedAt: at,
          questions: input.questions,
          settings: input.settings,
          timings: {},
          extractLease: { token, until: new Date(now().getTime() + input.leaseMs).toISOString() },
        },
        'job item',
      );
      try {
        await deps.ddb.send(
          new PutCommand({
            TableName: deps.jobsTable,
            Item: item,
            ConditionExpression:
              'attribute_not_exists(jobId) OR (#status = :queued AND attribute_not_exists(enqueuedAt) AND (attribute_not_exists(extractLease) OR extractLease.#until < :now))',
            ExpressionAttributeNames: { '#status': 'status', '#until': 'until' },
            ExpressionAttributeValues: { ':queued': 'QUEUED', ':now': at },
          }),
        );
        return { claimed: true, token, item };
      } catch (e) {
        if (!isConditionFailure(e)) throw e;
        const existing = await read(input.jobId);
        return {
          claimed: false,
          existing: existing && {
            status: existing.status,
            enqueuedAt: existing.enqueuedAt,
            reason: existing.reason,
            leaseHeld: Boolean(existing.extractLease && existing.extractLease.until >= at),
          },
        };
      }
    },

    /** Frames are in S3: record them, with the questions and settings resolved for this job. */
    async ready(jobId: string, token: string, fields: { frames: NonNullable<JobItem['frames']>; questions: Question[]; settings: InferenceSettings; timings: Timings }): Promise<void> {
      await underLease(jobId, token, 'ready', 'SET frames = :frames, questions = :questions, settings = :settings, timings = :timings, updatedAt = :now', {
        ':frames': fields.frames,
        ':questions': fields.questions,
        ':settings': fields.settings,
        ':timings': fields.timings,
        ':now': iso(),
      });
    },

    /** Sends the job message; a body the queue refuses is a PermanentInputError (retrying sends the same bytes). */
    async send(message: JobMessageInput): Promise<string | undefined> {
      const body = serializeJobMessage(message);
      try {
        const r = await deps.sqs.send(new SendMessageCommand({ QueueUrl: deps.queueUrl, MessageBody: body }));
        return r.MessageId;
      } catch (e) {
        if (isContentRejection(e)) throw new PermanentInputError(`the job queue refused the job message (${(e as Error).name}: ${(e as Error).message})`);
        throw e;
      }
    },

    async enqueued(jobId: string, token: string): Promise<void> {
      await underLease(jobId, token, 'enqueued', 'SET enqueuedAt = :now REMOVE extractLease', { ':now': iso() });
    },

    async fail(jobId: string, token: string, reason: string, timings: Timings): Promise<void> {
      await underLease(jobId, token, 'fail', 'SET #status = :failed, reason = :reason, timings = :timings, updatedAt = :now REMOVE extractLease', {
        ':failed': 'FAILED',
        ':reason': reason.slice(0, 2000),
        ':timings': timings,
        ':now': iso(),
      }, { '#status': 'status' });
    },

    /** Gives the job back after a transient error, so the retry need not wait for the lease to lapse. */
    async release(jobId: string, token: string): Promise<void> {
      try {
        await underLease(jobId, token, 'release', 'REMOVE extractLease', {});
      } catch (e) {
        // Someone else holds the job already: nothing of ours to give back.
        if (!(e instanceof LeaseLostError)) throw e;
      }
    },
  };
}

export type JobStore = ReturnType<typeof createJobStore>;

export function buildJobMessage(input: { jobId: string; profile: string; video: VideoRef; frames: FramesRef; questions: Question[]; settings: InferenceSettings; enqueuedAt: string }): JobMessageInput {
  return { schemaVersion: JOB_MESSAGE_SCHEMA_VERSION, kind: 'extracted', ...input };
}
