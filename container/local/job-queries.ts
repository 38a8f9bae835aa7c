/** Reads jobs and answers the way a user of the tables would (BatchGetItem, Query, the byVideo index). */
import { BatchGetCommand, GetCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ANSWERS_TABLE_KEYS, type AnswerItem, type JobItem } from '../../lib/contracts';

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
