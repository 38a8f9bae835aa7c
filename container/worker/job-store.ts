/**
 * The worker's DynamoDB writes, all conditional, so that a redelivered or duplicated message never
 * overwrites a finished job and two workers racing on one job end with one consistent result.
 *
 * Ownership: each claim bumps `attempts` (read, then a conditional update on the value read, so
 * claims are totally ordered) and records a fencing token `runToken` = "<attempt, zero-padded>.<uuid>".
 *  - A job can be claimed when it is QUEUED, absent, or RUNNING with a stale lease (`updatedAt`
 *    older than the lease: the heartbeat refreshes it, so a live owner's job is not taken).
 *  - Answers are written with the token and the condition "no answer yet, or one from an earlier or
 *    the same claim" (tokens compare as strings), so a later claim replaces an earlier one's
 *    answers and an earlier claim can never replace a later one's.
 *  - DONE is written only by the owner (runToken and RUNNING checked). DONE and FAILED are final:
 *    no claim succeeds on them. Hence the owner that commits holds the highest token, and every
 *    answer of a DONE job carries that token. (dynalite has no TransactWriteItems, and fencing
 *    needs none.)
 */
import { randomUUID } from 'node:crypto';
import { GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { AnswerItem, JobCost, JobItem, JobMessage, JobProgress, PoolingSchedule, Timings, TransferBytesRecord } from '../../lib/contracts';

export interface JobStoreTables {
  jobsTable: string;
  answersTable: string;
}

export type ClaimResult =
  | { outcome: 'claimed'; runToken: string; attempt: number; item: Partial<JobItem> }
  | { outcome: 'finished'; status: 'DONE' | 'FAILED'; item: Partial<JobItem> }
  /** Another delivery's lease is live until `leaseExpiresAt` (ms since the epoch). */
  | { outcome: 'held'; by?: string; runToken?: string; leaseExpiresAt: number }
  /** The item changed between every read and write of the claim's rounds: someone is acting on it now. */
  | { outcome: 'contended'; rounds: number };

export interface CompletionRecord {
  timings: Timings;
  tokens: { visual: number; prompt: number; generated: number };
  ropeScale: number;
  ropeMode: string;
  poolingUsed: PoolingSchedule;
  framesUsed: number;
  modelId: string;
  fallback?: string;
  transferBytes?: TransferBytesRecord;
  cost?: JobCost;
  frameSpan?: { firstSeconds: number; lastSeconds: number };
}

const isConditionFailure = (e: unknown) => (e as { name?: string })?.name === 'ConditionalCheckFailedException';

/** Read-then-conditional-write rounds a claim tries before it reports contention. */
export const CLAIM_ROUNDS = 5;

export function runTokenFor(attempt: number): string {
  return `${String(attempt).padStart(6, '0')}.${randomUUID()}`;
}

/** "The item is still exactly as read": same status, updatedAt and runToken (absent ones still absent). */
function asReadCondition(seen: Partial<JobItem>): { condition: string; values: Record<string, unknown> } {
  const values: Record<string, unknown> = { ':seenStatus': seen.status };
  const conds = ['#status = :seenStatus'];
  if (seen.updatedAt) {
    values[':seenUpdatedAt'] = seen.updatedAt;
    conds.push('updatedAt = :seenUpdatedAt');
  } else conds.push('attribute_not_exists(updatedAt)');
  if (seen.runToken) {
    values[':seenToken'] = seen.runToken;
    conds.push('runToken = :seenToken');
  } else conds.push('attribute_not_exists(runToken)');
  return { condition: conds.join(' AND '), values };
}

export class JobStore {
  constructor(
    private readonly ddb: DynamoDBDocumentClient,
    private readonly tables: JobStoreTables,
    /** A RUNNING job whose updatedAt is older than this is presumed abandoned by a dead worker. */
    private readonly leaseMs: number,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async get(jobId: string): Promise<Partial<JobItem> | undefined> {
    const r = await this.ddb.send(new GetCommand({ TableName: this.tables.jobsTable, Key: { jobId }, ConsistentRead: true }));
    return r.Item as Partial<JobItem> | undefined;
  }

  /**
   * Whether the item was written within the lease: a RUNNING job updated this recently has a live
   * owner (its heartbeat refreshes updatedAt), and any recent write means someone is acting on it.
   */
  isFresh(item: Partial<JobItem>, now: Date = this.now()): boolean {
    return !!item.updatedAt && Date.parse(item.updatedAt) > now.getTime() - this.leaseMs;
  }

  /** Takes ownership of the job for this delivery, or says why not. */
  async claim(msg: JobMessage, workerId: string): Promise<ClaimResult> {
    for (let round = 0; round < CLAIM_ROUNDS; round++) {
      const item = await this.get(msg.jobId);
      const now = this.now();
      if (item?.status === 'DONE' || item?.status === 'FAILED') return { outcome: 'finished', status: item.status, item };
      if (item?.status === 'RUNNING' && this.isFresh(item, now)) {
        return { outcome: 'held', by: item.workerId, runToken: item.runToken, leaseExpiresAt: Date.parse(item.updatedAt!) + this.leaseMs };
      }
      const prev = item?.attempts ?? 0;
      const attempt = prev + 1;
      const runToken = runTokenFor(attempt);
      const iso = now.toISOString();
      const staleBefore = new Date(now.getTime() - this.leaseMs).toISOString();
      try {
        const r = await this.ddb.send(
          new UpdateCommand({
            TableName: this.tables.jobsTable,
            Key: { jobId: msg.jobId },
            UpdateExpression:
              'SET #status = :running, attempts = :attempt, runToken = :token, workerId = :worker, updatedAt = :now, ' +
              'videoUri = if_not_exists(videoUri, :videoUri), video = if_not_exists(video, :video), createdAt = if_not_exists(createdAt, :now), ' +
              'questions = if_not_exists(questions, :questions), settings = if_not_exists(settings, :settings), timings = if_not_exists(timings, :empty) ' +
              // An earlier attempt's progress says nothing about this one.
              'REMOVE progress',
            ConditionExpression: item
              ? '(#status = :queued OR (#status = :running AND updatedAt < :stale)) AND (attempts = :prev OR attribute_not_exists(attempts))'
              : 'attribute_not_exists(jobId)',
            ExpressionAttributeNames: { '#status': 'status' },
            ExpressionAttributeValues: {
              ':running': 'RUNNING',
              ':attempt': attempt,
              ':token': runToken,
              ':worker': workerId,
              ':now': iso,
              ':videoUri': `s3://${msg.video.bucket}/${msg.video.key}`,
              ':video': msg.video,
              ':questions': msg.questions,
              ':settings': msg.settings,
              ':empty': {},
              ...(item ? { ':queued': 'QUEUED', ':stale': staleBefore, ':prev': prev } : {}),
            },
            ReturnValues: 'ALL_NEW',
          }),
        );
        return { outcome: 'claimed', runToken, attempt, item: r.Attributes as Partial<JobItem> };
      } catch (e) {
        if (!isConditionFailure(e)) throw e;
        // Someone else changed the item between our read and write: read again and decide.
      }
    }
    return { outcome: 'contended', rounds: CLAIM_ROUNDS };
  }

  /** Refreshes the lease; false when this delivery no longer owns the job. */
  heartbeat(jobId: string, runToken: string): Promise<boolean> {
    return this.updateOwned(jobId, runToken, 'SET updatedAt = :now', { ':now': this.now().toISOString() });
  }

  /**
   * Records the running job's progress (stage, share done, ETA); false when this delivery no longer
   * owns the job. It leaves updatedAt alone: that is the lease the heartbeat keeps, and the
   * reconciler's "still as read" conditions compare it.
   */
  progress(jobId: string, runToken: string, progress: JobProgress): Promise<boolean> {
    return this.updateOwned(jobId, runToken, 'SET progress = :progress', { ':progress': progress });
  }

  /** An update only the owner of the RUNNING job may make; false when this delivery no longer owns it. */
  private async updateOwned(jobId: string, runToken: string, updateExpression: string, values: Record<string, unknown>): Promise<boolean> {
    try {
      await this.ddb.send(
        new UpdateCommand({
          TableName: this.tables.jobsTable,
          Key: { jobId },
          UpdateExpression: updateExpression,
          ConditionExpression: 'runToken = :token AND #status = :running',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ...values, ':token': runToken, ':running': 'RUNNING' },
        }),
      );
      return true;
    } catch (e) {
      if (isConditionFailure(e)) return false;
      throw e;
    }
  }

  /** Writes one answer; false when a later claim already answered (this delivery lost the job). */
  async putAnswer(answer: AnswerItem & { runToken: string }): Promise<boolean> {
    try {
      await this.ddb.send(
        new PutCommand({
          TableName: this.tables.answersTable,
          Item: answer,
          ConditionExpression: 'attribute_not_exists(jobId) OR attribute_not_exists(runToken) OR runToken <= :token',
          ExpressionAttributeValues: { ':token': answer.runToken },
        }),
      );
      return true;
    } catch (e) {
      if (isConditionFailure(e)) return false;
      throw e;
    }
  }

  /** RUNNING → DONE by the owner; true also when a previous (timed-out) try of this same write landed. */
  async complete(jobId: string, runToken: string, rec: CompletionRecord): Promise<boolean> {
    const names: Record<string, string> = { '#status': 'status' };
    const values: Record<string, unknown> = {
      ':done': 'DONE',
      ':running': 'RUNNING',
      ':token': runToken,
      ':now': this.now().toISOString(),
      ':tokens': rec.tokens,
      ':ropeScale': rec.ropeScale,
      ':ropeMode': rec.ropeMode,
      ':pooling': rec.poolingUsed,
      ':framesUsed': rec.framesUsed,
      ':modelId': rec.modelId,
    };
    const sets = [
      '#status = :done',
      'updatedAt = :now',
      'tokens = :tokens',
      'ropeScale = :ropeScale',
      'ropeMode = :ropeMode',
      'poolingUsed = :pooling',
      'framesUsed = :framesUsed',
      'modelId = :modelId',
    ];
    // Nested SETs keep what the Lambda recorded (extractMs) next to the worker's timings.
    for (const [k, v] of Object.entries(rec.timings)) {
      if (v === undefined) continue;
      names[`#t_${k}`] = k;
      values[`:t_${k}`] = Math.round(v * 1000) / 1000;
      sets.push(`timings.#t_${k} = :t_${k}`);
    }
    if (rec.transferBytes) {
      values[':transferBytes'] = rec.transferBytes;
      sets.push('transferBytes = :transferBytes');
    }
    if (rec.cost) {
      values[':cost'] = rec.cost;
      sets.push('cost = :cost');
    }
    if (rec.frameSpan) {
      values[':frameSpan'] = rec.frameSpan;
      sets.push('frameSpan = :frameSpan');
    }
    const removes = ['reason', 'progress'];
    if (rec.fallback) {
      values[':fallback'] = rec.fallback;
      sets.push('fallback = :fallback');
    } else removes.push('fallback');
    try {
      await this.ddb.send(
        new UpdateCommand({
          TableName: this.tables.jobsTable,
          Key: { jobId },
          UpdateExpression: `SET ${sets.join(', ')} REMOVE ${removes.join(', ')}`,
          ConditionExpression: 'runToken = :token AND #status = :running',
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
      );
      return true;
    } catch (e) {
      if (!isConditionFailure(e)) throw e;
      const item = await this.get(jobId);
      return item?.status === 'DONE' && item.runToken === runToken;
    }
  }

  /** Gives the job back (transient failure, SIGTERM): QUEUED again with the reason, for the next delivery. */
  async release(jobId: string, runToken: string, reason: string): Promise<boolean> {
    return this.conditionalStatus(jobId, 'QUEUED', reason, 'runToken = :token AND #status = :running', { ':token': runToken, ':running': 'RUNNING' });
  }

  /**
   * Marks the job FAILED with a reason a person understands. With a runToken only the owner may;
   * without one (an invalid message, before any claim) only a QUEUED job is failed, never one
   * another worker runs or finished.
   */
  async fail(jobId: string, reason: string, runToken?: string): Promise<boolean> {
    if (runToken) return this.conditionalStatus(jobId, 'FAILED', reason, 'runToken = :token AND #status = :running', { ':token': runToken, ':running': 'RUNNING' });
    return this.conditionalStatus(jobId, 'FAILED', reason, 'attribute_exists(jobId) AND #status = :queued', { ':queued': 'QUEUED' });
  }

  /**
   * Marks a job whose message was dead-lettered FAILED, only if the item is still exactly as read
   * (same status, updatedAt and runToken): a live worker's heartbeat, a claim or a requeue racing
   * this write changes one of them, and wins.
   */
  async failAsRead(seen: Partial<JobItem> & { jobId: string }, reason: string): Promise<boolean> {
    const { condition, values } = asReadCondition(seen);
    return this.conditionalStatus(seen.jobId, 'FAILED', reason, condition, values);
  }

  /**
   * Makes a stranded job QUEUED again for a message the reconciler is about to send, only if the
   * item is still exactly as read (the same guard as failAsRead); counts the re-send.
   */
  async requeueAsRead(seen: Partial<JobItem> & { jobId: string }, reason: string): Promise<boolean> {
    const { condition, values } = asReadCondition(seen);
    try {
      await this.ddb.send(
        new UpdateCommand({
          TableName: this.tables.jobsTable,
          Key: { jobId: seen.jobId },
          UpdateExpression: 'SET #status = :queued, reason = :reason, updatedAt = :now, enqueuedAt = if_not_exists(enqueuedAt, :now), resends = if_not_exists(resends, :zero) + :one REMOVE extractLease, progress',
          ConditionExpression: condition,
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':queued': 'QUEUED', ':reason': reason.slice(0, 2000), ':now': this.now().toISOString(), ':zero': 0, ':one': 1, ...values },
        }),
      );
      return true;
    } catch (e) {
      if (isConditionFailure(e)) return false;
      throw e;
    }
  }

  private async conditionalStatus(jobId: string, status: 'QUEUED' | 'FAILED', reason: string, condition: string, condValues: Record<string, unknown>): Promise<boolean> {
    try {
      await this.ddb.send(
        new UpdateCommand({
          TableName: this.tables.jobsTable,
          Key: { jobId },
          UpdateExpression: 'SET #status = :status, reason = :reason, updatedAt = :now REMOVE progress',
          ConditionExpression: condition,
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':status': status, ':reason': reason.slice(0, 2000), ':now': this.now().toISOString(), ...condValues },
        }),
      );
      return true;
    } catch (e) {
      if (isConditionFailure(e)) return false;
      throw e;
    }
  }
}
