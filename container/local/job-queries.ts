/** Reads jobs and answers the way a user of the tables would (BatchGetItem, Query, the byStatus and byVideo indexes). */
import { BatchGetCommand, GetCommand, QueryCommand, ScanCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ANSWERS_TABLE_KEYS, JOB_STATUSES, JOBS_TABLE_KEYS, type AnswerItem, type JobItem, type JobStatus } from '../../lib/contracts';

export async function getJob(ddb: DynamoDBDocumentClient, table: string, jobId: string): Promise<JobItem | undefined> {
  const r = await ddb.send(new GetCommand({ TableName: table, Key: { jobId }, ConsistentRead: true }));
  return r.Item as JobItem | undefined;
}

export async function getJobs(ddb: DynamoDBDocumentClient, table: string, jobIds: string[]): Promise<Map<string, JobItem>> {
  const out = new Map<string, JobItem>();
  for (let i = 0; i < jobIds.length; i += 100) {
    let keys: Record<string, unknown>[] | undefined = jobIds.slice(i, i + 100).map((jobId) => ({ jobId }));
    for (let round = 0; keys && keys.length > 0 && round < 10; round++) {
      const r = await ddb.send(new BatchGetCommand({ RequestItems: { [table]: { Keys: keys, ConsistentRead: true } } }));
      for (const it of (r.Responses?.[table] ?? []) as JobItem[]) out.set(it.jobId, it);
      keys = r.UnprocessedKeys?.[table]?.Keys as Record<string, unknown>[] | undefined;
    }
  }
  return out;
}

export async function answersOfJob(ddb: DynamoDBDocumentClient, table: string, jobId: string): Promise<AnswerItem[]> {
  const out: AnswerItem[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const r = await ddb.send(new QueryCommand({ TableName: table, KeyConditionExpression: 'jobId = :j', ExpressionAttributeValues: { ':j': jobId }, ConsistentRead: true, ExclusiveStartKey: start }));
    out.push(...((r.Items ?? []) as AnswerItem[]));
    start = r.LastEvaluatedKey;
  } while (start);
  return out;
}

/** Every answer about one video (all its jobs, `ask` jobs included), oldest first. */
export async function answersOfVideo(ddb: DynamoDBDocumentClient, table: string, videoUri: string): Promise<AnswerItem[]> {
  const idx = ANSWERS_TABLE_KEYS.byVideo;
  const out: AnswerItem[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const r = await ddb.send(
      new QueryCommand({
        TableName: table,
        IndexName: idx.indexName,
        KeyConditionExpression: '#v = :v',
        ExpressionAttributeNames: { '#v': idx.partitionKey },
        ExpressionAttributeValues: { ':v': videoUri },
        ExclusiveStartKey: start,
      }),
    );
    out.push(...((r.Items ?? []) as AnswerItem[]));
    start = r.LastEvaluatedKey;
  } while (start);
  return out;
}

export interface JobListQuery {
  status?: JobStatus;
  /** s3://bucket/key of the video (index byVideo). */
  videoUri?: string;
  /** ISO time: jobs updated (byStatus) or created (byVideo) at or after it. */
  since?: string;
  limit?: number;
}

/** Queries one index newest first, `limit` items at most. */
async function queryNewest(
  ddb: DynamoDBDocumentClient,
  input: { table: string; index: { indexName: string; partitionKey: string; sortKey: string }; value: string; since?: string; filterStatus?: JobStatus; limit: number },
): Promise<JobItem[]> {
  const out: JobItem[] = [];
  let start: Record<string, unknown> | undefined;
  const { index } = input;
  do {
    const r = await ddb.send(
      new QueryCommand({
        TableName: input.table,
        IndexName: index.indexName,
        KeyConditionExpression: `#pk = :pk${input.since ? ' AND #sk >= :since' : ''}`,
        ...(input.filterStatus ? { FilterExpression: '#status = :status' } : {}),
        ExpressionAttributeNames: { '#pk': index.partitionKey, ...(input.since ? { '#sk': index.sortKey } : {}), ...(input.filterStatus ? { '#status': 'status' } : {}) },
        ExpressionAttributeValues: { ':pk': input.value, ...(input.since ? { ':since': input.since } : {}), ...(input.filterStatus ? { ':status': input.filterStatus } : {}) },
        ScanIndexForward: false,
        ExclusiveStartKey: start,
      }),
    );
    out.push(...((r.Items ?? []) as JobItem[]));
    start = r.LastEvaluatedKey;
  } while (start && out.length < input.limit);
  return out.slice(0, input.limit);
}

/**
 * Jobs newest first, through the table's indexes (never a scan): one video's jobs from `byVideo`
 * (by creation time; a status filters them), otherwise each status's jobs from `byStatus` (by last
 * update), merged.
 */
export async function listJobs(ddb: DynamoDBDocumentClient, table: string, q: JobListQuery = {}): Promise<JobItem[]> {
  const limit = q.limit ?? 50;
  if (q.videoUri) {
    return queryNewest(ddb, { table, index: JOBS_TABLE_KEYS.byVideo, value: q.videoUri, since: q.since, filterStatus: q.status, limit });
  }
  const statuses = q.status ? [q.status] : JOB_STATUSES;
  const lists = await Promise.all(statuses.map((s) => queryNewest(ddb, { table, index: JOBS_TABLE_KEYS.byStatus, value: s, since: q.since, limit })));
  return lists
    .flat()
    .sort((a, b) => b.updatedAt.localeCompare(a.updatedAt))
    .slice(0, limit);
}

/** Every item of a table (consistent reads): for a local run's own tables, which hold only that run's jobs. */
export async function scanTable<T>(ddb: DynamoDBDocumentClient, table: string): Promise<T[]> {
  const out: T[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const r = await ddb.send(new ScanCommand({ TableName: table, ExclusiveStartKey: start, ConsistentRead: true }));
    out.push(...((r.Items ?? []) as T[]));
    start = r.LastEvaluatedKey;
  } while (start);
  return out;
}
