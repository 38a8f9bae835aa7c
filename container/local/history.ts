/**
 * The local history: the finished jobs and answers of every `longsight run` on this machine, kept
 * after the run's in-memory servers are gone, so that `longsight jobs`, `status` and `answers` work
 * once the run has ended. It is the same two tables (keys and GSIs from lib/contracts) in a
 * DynamoDB-compatible store on disk (dynalite on LevelDB, under <home>/history/), opened for the
 * few moments a command needs it.
 *
 * One process at a time may open it (LevelDB's lock): a lock file says who holds it, and another
 * process waits for it (a holder that died is recognised by its pid). A job run again replaces its
 * earlier record (same job id: the same video bytes under the same key).
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { AnswerItem, JobItem } from '../../lib/contracts';
import { ANSWERS_TABLE_KEYS } from '../../lib/contracts';
import { createTables, DEFAULT_RESOURCE_NAMES, startEmbeddedAws } from './embedded-aws';
import { homePath } from './home';

export interface LocalHistory {
  ddb: DynamoDBDocumentClient;
  jobsTable: string;
  answersTable: string;
  /** Where it lives, for messages. */
  dir: string;
  close(): Promise<void>;
}

const LOCK_FILE = 'longsight.lock';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the lock file (O_EXCL), waiting while a live process holds it; a dead holder's lock is taken over. */
async function lock(dir: string, waitMs: number): Promise<() => void> {
  const file = join(dir, LOCK_FILE);
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(file, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = Number(readFileSafe(file));
    if (!Number.isInteger(holder) || holder <= 0 || (holder !== process.pid && !alive(holder))) {
      rmSync(file, { force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`the local history (${dir}) is held by process ${holder}: try again when it has finished`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function readFileSafe(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return '';
  }
}

/** Opens the history store (creating it on first use); `close()` stops its server and releases the lock. */
export async function openHistory(opts: { dir?: string; waitMs?: number } = {}): Promise<LocalHistory> {
  const dir = opts.dir ?? homePath('history');
  mkdirSync(dir, { recursive: true });
  const unlock = await lock(dir, opts.waitMs ?? 30_000);
  try {
    const server = await startEmbeddedAws({ dataDir: dir, services: 'dynamodb' });
    const ddb = DynamoDBDocumentClient.from(
      new DynamoDBClient({ endpoint: server.endpoints.dynamodb, region: 'us-east-1', credentials: { accessKeyId: 'longsight-local', secretAccessKey: 'longsight-local-secret' } }),
      { marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false } },
    );
    const names = { jobsTable: DEFAULT_RESOURCE_NAMES.jobsTable, answersTable: DEFAULT_RESOURCE_NAMES.answersTable };
    await createTables(ddb, names.jobsTable, names.answersTable);
    return {
      ddb,
      ...names,
      dir,
      async close() {
        ddb.destroy();
        await server.stop();
        unlock();
      },
    };
  } catch (e) {
    unlock();
    throw e;
  }
}

export function historyExists(dir = homePath('history')): boolean {
  return existsSync(dir);
}

async function batchWrite(ddb: DynamoDBDocumentClient, table: string, requests: Record<string, unknown>[]): Promise<void> {
  for (let i = 0; i < requests.length; i += 25) {
    let pending: Record<string, unknown>[] | undefined = requests.slice(i, i + 25);
    for (let round = 0; pending && pending.length > 0; round++) {
      if (round > 10) throw new Error(`could not write ${pending.length} item(s) to ${table} of the local history`);
      const r = await ddb.send(new BatchWriteCommand({ RequestItems: { [table]: pending as never } }));
      pending = r.UnprocessedItems?.[table] as Record<string, unknown>[] | undefined;
    }
  }
}

/**
 * Records finished jobs and their answers: each job replaces its earlier record, and answers of
 * an earlier run of the same job that this run did not give again are removed.
 */
export async function recordJobs(h: LocalHistory, jobs: JobItem[], answers: AnswerItem[]): Promise<void> {
  const stale: Record<string, unknown>[] = [];
  const keep = new Set(answers.map((a) => `${a.jobId}\n${a.questionId}`));
  for (const j of jobs) {
    const r = await h.ddb.send(new QueryCommand({ TableName: h.answersTable, KeyConditionExpression: 'jobId = :j', ExpressionAttributeValues: { ':j': j.jobId }, ProjectionExpression: 'jobId, questionId' }));
    for (const a of (r.Items ?? []) as { jobId: string; questionId: string }[]) {
      if (!keep.has(`${a.jobId}\n${a.questionId}`)) stale.push({ DeleteRequest: { Key: { [ANSWERS_TABLE_KEYS.partitionKey]: a.jobId, [ANSWERS_TABLE_KEYS.sortKey]: a.questionId } } });
    }
  }
  await batchWrite(h.ddb, h.answersTable, [...stale, ...answers.map((a) => ({ PutRequest: { Item: a } }))]);
  await batchWrite(
    h.ddb,
    h.jobsTable,
    jobs.map((j) => ({ PutRequest: { Item: j } })),
  );
}

/** Opens the history, runs `fn`, closes it. */
export async function withHistory<T>(fn: (h: LocalHistory) => Promise<T>, opts: { dir?: string; waitMs?: number } = {}): Promise<T> {
  const h = await openHistory(opts);
  try {
    return await fn(h);
  } finally {
    await h.close();
  }
}
