/**
 * Embedded AWS: servers that speak the S3, SQS and DynamoDB wire protocols on loopback, started
 * inside this process, so the real Lambda handler and the real worker run unchanged on one machine
 * (tests, `longsight run`). The code under test only ever sees AWS_ENDPOINT_URL_* and the AWS SDK.
 *
 *  - fauxqs (S3 + SQS + SNS on one port) and dynalite (DynamoDB on LevelDB) run in a worker thread
 *    of this process, not on the main thread: the handler may block its own event loop (ffmpeg,
 *    sharp, a spawnSync) without starving the servers it reads from, and Jest's module loader never
 *    has to load fauxqs (an ES module whose package only exports an `import` condition).
 *  - Both listen on 127.0.0.1 on free ports.
 *
 * What these servers lack compared with AWS (checked by test/lambda/embedded-aws.test.ts):
 *  - fauxqs S3 has no bucket versioning: PutBucketVersioning is accepted but ignored, objects get no
 *    version id, `?versionId=` is ignored. provisionLongsight reports `versioning: 'unsupported'`;
 *    job identity then falls back to the ETag, as the contracts define for unversioned buckets.
 *  - fauxqs keeps everything in memory (no persistence across restarts) and caps one request body
 *    at 11 MiB: larger uploads must be multipart (test/support/s3-upload.ts does that).
 *  - fauxqs does not check signatures (presigned URLs are served as plain GETs; Range works).
 *  - dynalite persists to LevelDB when `dataDir` is given; in memory otherwise. One process at a
 *    time may hold a data dir (LevelDB's lock): the local history (history.ts) takes a lock file
 *    first, since dynalite fails every request when LevelDB cannot open.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { Worker } from 'node:worker_threads';
import {
  CreateBucketCommand,
  GetBucketVersioningCommand,
  PutBucketVersioningCommand,
} from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand, SetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import {
  CreateTableCommand,
  DescribeTableCommand,
  type CreateTableCommandInput,
  ResourceInUseException,
} from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { AwsClients } from '../../lib/aws-clients';
import { ANSWERS_TABLE_KEYS, JOBS_TABLE_KEYS } from '../../lib/contracts/items';

export interface EmbeddedAws {
  endpoints: { s3: string; sqs: string; dynamodb: string };
  /** AWS_ENDPOINT_URL_S3/_SQS/_DYNAMODB, AWS_REGION, dummy credentials: what a child process or applyEnv needs. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

export interface StartEmbeddedAwsOptions {
  /** Where dynalite keeps its LevelDB files (in memory when absent). fauxqs is always in memory. */
  dataDir?: string;
  /** Server request logs on stdout (off by default). */
  log?: boolean;
  region?: string;
  /** 'dynamodb': only the DynamoDB server (the local history); its S3/SQS endpoints are then empty. */
  services?: 'all' | 'dynamodb';
}

/** Walks up from this file to the node_modules folder that holds `pkg` (ESM-only packages cannot be require.resolve'd). */
function packageDir(pkg: string): string {
  let dir = __dirname;
  for (;;) {
    const candidate = join(dir, 'node_modules', pkg);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    const up = dirname(dir);
    if (up === dir) throw new Error(`embedded AWS: package "${pkg}" is not installed (looked in node_modules above ${__dirname})`);
    dir = up;
  }
}

function fauxqsEntry(): string {
  const dir = packageDir('fauxqs');
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
    exports?: { '.'?: { import?: { default?: string } } };
    main?: string;
  };
  const rel = pkg.exports?.['.']?.import?.default ?? pkg.main ?? 'dist/app.js';
  return join(dir, rel);
}

/**
 * The worker thread's program (plain JS, run with `eval`): starts both servers, posts the ports,
 * and closes them when told to.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { pathToFileURL } = require('node:url');
(async () => {
  try {
    let app;
    let s3Port = 0;
    if (workerData.fauxqsEntry) {
      const dist = require('node:path').dirname(workerData.fauxqsEntry);
      const load = (rel) => import(pathToFileURL(require('node:path').join(dist, rel)).href);
      const fauxqs = await load('app.js');
      const { SqsStore } = await load('sqs/sqsStore.js');
      const { SnsStore } = await load('sns/snsStore.js');
      const { S3Store } = await load('s3/s3Store.js');
      const sqsStore = new SqsStore();
      // Queue URLs on the address the client used (http://127.0.0.1:PORT/000000000000/name), not
      // fauxqs' default sqs.<region>.localhost, which needs wildcard DNS.
      sqsStore.host = '';
      app = fauxqs.buildApp({
        logger: workerData.log,
        defaultRegion: workerData.region,
        stores: { sqsStore, snsStore: new SnsStore(), s3Store: new S3Store() },
      });
      await app.listen({ port: 0, host: '127.0.0.1' });
      s3Port = app.server.address().port;
    }
    const dynalite = require(workerData.dynaliteDir);
    const dyn = dynalite({ path: workerData.dynamoPath || undefined, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0, verbose: workerData.log });
    await new Promise((resolve, reject) => { dyn.once('error', reject); dyn.listen(0, '127.0.0.1', resolve); });
    const dynamoPort = dyn.address().port;
    parentPort.on('message', async (m) => {
      if (m !== 'stop') return;
      if (app) await app.close().catch(() => {});
      await new Promise((resolve) => dyn.close(() => resolve()));
      parentPort.postMessage({ stopped: true });
    });
    parentPort.postMessage({ s3Port, dynamoPort });
  } catch (e) {
    parentPort.postMessage({ error: String((e && e.stack) || e) });
  }
})();
`;

export async function startEmbeddedAws(opts: StartEmbeddedAwsOptions = {}): Promise<EmbeddedAws> {
  const region = opts.region ?? 'us-east-1';
  let dynamoPath: string | undefined;
  if (opts.dataDir) {
    dynamoPath = join(opts.dataDir, 'dynamodb');
    mkdirSync(dynamoPath, { recursive: true });
  }
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { fauxqsEntry: opts.services === 'dynamodb' ? undefined : fauxqsEntry(), dynaliteDir: packageDir('dynalite'), dynamoPath, log: Boolean(opts.log), region },
  });
  const ports = await new Promise<{ s3Port: number; dynamoPort: number }>((resolve, reject) => {
    const onExit = (code: number) => reject(new Error(`embedded AWS: server thread exited with code ${code} before starting`));
    worker.once('error', reject);
    worker.once('exit', onExit);
    worker.once('message', (m: { s3Port?: number; dynamoPort?: number; error?: string }) => {
      worker.off('exit', onExit);
      if (m.error) reject(new Error(`embedded AWS: could not start the servers: ${m.error}`));
      else resolve({ s3Port: m.s3Port!, dynamoPort: m.dynamoPort! });
    });
  });
  const s3 = ports.s3Port ? `http://127.0.0.1:${ports.s3Port}` : '';
  const dynamodb = `http://127.0.0.1:${ports.dynamoPort}`;
  const env: Record<string, string> = {
    ...(s3 ? { AWS_ENDPOINT_URL_S3: s3, AWS_ENDPOINT_URL_SQS: s3 } : {}),
    AWS_ENDPOINT_URL_DYNAMODB: dynamodb,
    AWS_REGION: region,
    AWS_DEFAULT_REGION: region,
    // Dummy credentials: the local servers do not check signatures, but the SDK must sign.
    AWS_ACCESS_KEY_ID: 'longsight-local',
    AWS_SECRET_ACCESS_KEY: 'longsight-local-secret',
    // Never fall through to an instance-metadata lookup on a laptop.
    AWS_EC2_METADATA_DISABLED: 'true',
  };
  let stopped: Promise<void> | undefined;
  return {
    endpoints: { s3, sqs: s3, dynamodb },
    env,
    stop() {
      stopped ??= (async () => {
        const done = new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 5000);
          worker.once('message', () => {
            clearTimeout(timer);
            resolve();
          });
        });
        worker.postMessage('stop');
        await done;
        await worker.terminate();
      })();
      return stopped;
    },
  };
}

/** Sets each variable in process.env; returns a function that restores the previous values. */
export function applyEnv(env: Record<string, string>): () => void {
  const previous: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) {
    previous[k] = process.env[k];
    process.env[k] = v;
  }
  return () => {
    for (const [k, v] of Object.entries(previous)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}

export interface LongsightResources {
  bucket: string;
  queueUrl: string;
  dlqUrl: string;
  jobsTable: string;
  answersTable: string;
  /** Whether the S3 server honoured PutBucketVersioning ('unsupported' on fauxqs: job ids then use the ETag). */
  versioning: 'Enabled' | 'unsupported';
}

export const DEFAULT_RESOURCE_NAMES = {
  bucket: 'longsight-videos',
  queue: 'longsight-jobs',
  jobsTable: 'longsight-jobs',
  answersTable: 'longsight-answers',
} as const;

/** The two tables exactly as the contracts (lib/contracts/items.ts) key them; GSIs project all attributes. */
export function tableDefinitions(jobsTable: string, answersTable: string): CreateTableCommandInput[] {
  const J = JOBS_TABLE_KEYS;
  const A = ANSWERS_TABLE_KEYS;
  return [
    {
      TableName: jobsTable,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: J.partitionKey, AttributeType: 'S' },
        { AttributeName: J.byStatus.partitionKey, AttributeType: 'S' },
        { AttributeName: J.byStatus.sortKey, AttributeType: 'S' },
        { AttributeName: J.byVideo.partitionKey, AttributeType: 'S' },
        { AttributeName: J.byVideo.sortKey, AttributeType: 'S' },
      ],
      KeySchema: [{ AttributeName: J.partitionKey, KeyType: 'HASH' }],
      GlobalSecondaryIndexes: [J.byStatus, J.byVideo].map((g) => ({
        IndexName: g.indexName,
        KeySchema: [
          { AttributeName: g.partitionKey, KeyType: 'HASH' as const },
          { AttributeName: g.sortKey, KeyType: 'RANGE' as const },
        ],
        Projection: { ProjectionType: 'ALL' as const },
      })),
    },
    {
      TableName: answersTable,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: A.partitionKey, AttributeType: 'S' },
        { AttributeName: A.sortKey, AttributeType: 'S' },
        { AttributeName: A.byVideo.partitionKey, AttributeType: 'S' },
        { AttributeName: A.byVideo.sortKey, AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: A.partitionKey, KeyType: 'HASH' },
        { AttributeName: A.sortKey, KeyType: 'RANGE' },
      ],
      GlobalSecondaryIndexes: [
        {
          IndexName: A.byVideo.indexName,
          KeySchema: [
            { AttributeName: A.byVideo.partitionKey, KeyType: 'HASH' },
            { AttributeName: A.byVideo.sortKey, KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        },
      ],
    },
  ];
}

function errorName(e: unknown): string {
  return (e as { name?: string })?.name ?? '';
}

async function waitActive(ddb: DynamoDBDocumentClient, table: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const d = await ddb.send(new DescribeTableCommand({ TableName: table }));
    const gsisActive = (d.Table?.GlobalSecondaryIndexes ?? []).every((g) => g.IndexStatus === 'ACTIVE');
    if (d.Table?.TableStatus === 'ACTIVE' && gsisActive) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`table ${table} did not become ACTIVE`);
}

/** Creates (idempotently) the jobs and answers tables as the stack defines them, and waits until they are ACTIVE. */
export async function createTables(ddb: DynamoDBDocumentClient, jobsTable: string, answersTable: string): Promise<void> {
  for (const def of tableDefinitions(jobsTable, answersTable)) {
    try {
      await ddb.send(new CreateTableCommand(def));
    } catch (e) {
      if (!(e instanceof ResourceInUseException) && errorName(e) !== 'ResourceInUseException') throw e;
    }
    await waitActive(ddb, def.TableName!);
  }
}

/**
 * Creates (idempotently) what the stack creates: the video bucket (versioning requested), the job
 * queue with its DLQ and redrive policy, and the jobs and answers tables with their GSIs.
 */
export async function provisionLongsight(
  clients: AwsClients,
  names: Partial<{ bucket: string; queue: string; jobsTable: string; answersTable: string }> = {},
  opts: { visibilityTimeoutSeconds?: number; maxReceiveCount?: number } = {},
): Promise<LongsightResources> {
  const n = { ...DEFAULT_RESOURCE_NAMES, ...names };

  try {
    await clients.s3.send(new CreateBucketCommand({ Bucket: n.bucket }));
  } catch (e) {
    if (!['BucketAlreadyOwnedByYou', 'BucketAlreadyExists'].includes(errorName(e))) throw e;
  }
  await clients.s3.send(new PutBucketVersioningCommand({ Bucket: n.bucket, VersioningConfiguration: { Status: 'Enabled' } }));
  let versioning: LongsightResources['versioning'] = 'unsupported';
  try {
    const v = await clients.s3.send(new GetBucketVersioningCommand({ Bucket: n.bucket }));
    if (v.Status === 'Enabled') versioning = 'Enabled';
  } catch {
    versioning = 'unsupported';
  }

  const dlq = await clients.sqs.send(new CreateQueueCommand({ QueueName: `${n.queue}-dlq`, Attributes: { MessageRetentionPeriod: String(14 * 24 * 3600) } }));
  const dlqUrl = dlq.QueueUrl!;
  const dlqAttrs = await clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }));
  const redrive = JSON.stringify({ deadLetterTargetArn: dlqAttrs.Attributes!.QueueArn, maxReceiveCount: String(opts.maxReceiveCount ?? 3) });
  const attributes = { VisibilityTimeout: String(opts.visibilityTimeoutSeconds ?? 300), RedrivePolicy: redrive };
  let queueUrl: string;
  try {
    queueUrl = (await clients.sqs.send(new CreateQueueCommand({ QueueName: n.queue, Attributes: attributes }))).QueueUrl!;
  } catch (e) {
    // An existing queue with other attributes: bring it to these.
    if (!/QueueNameExists|QueueAlreadyExists/.test(errorName(e))) throw e;
    queueUrl = (await clients.sqs.send(new CreateQueueCommand({ QueueName: n.queue }))).QueueUrl!;
    await clients.sqs.send(new SetQueueAttributesCommand({ QueueUrl: queueUrl, Attributes: attributes }));
  }

  await createTables(clients.ddb, n.jobsTable, n.answersTable);

  return { bucket: n.bucket, queueUrl, dlqUrl, jobsTable: n.jobsTable, answersTable: n.answersTable, versioning };
}
