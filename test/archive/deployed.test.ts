/**
 * `longsight query --stack` and `longsight index --stack` through the real SDK clients: S3 and
 * DynamoDB on the embedded servers, and Athena, Glue, Step Functions and CloudFormation on a
 * loopback stub that speaks their protocols (they cannot run here; README names what that leaves
 * unchecked). The test asserts the calls the CLI makes and what it makes of the answers.
 */
import { readFileSync } from 'node:fs';
import { GetObjectCommand, PutObjectCommand, CreateBucketCommand } from '@aws-sdk/client-s3';
import { main } from '../../container/cli/main';
import { applyEnv } from '../../container/local/embedded-aws';
import {
  ARCHIVE_OUTPUTS,
  EXPORT_DATA_COLUMNS,
  EXPORT_TABLE_NAME,
  extractionProfile,
  extractRuntimeConfigOf,
  resolveEnvironment,
  type ExportRecord,
} from '../../lib/contracts';
import { startLocalAws, type LocalAws } from '../support/local-aws';
import { describeStacksXml, startAwsApiStub, StubAwsError, type AwsApiStub } from './support/aws-api-stub';

jest.setTimeout(120_000);

const STACK = 'Longsight-dev';
const RESULTS_BUCKET = 'longsight-dev-index-results';
const STATE_MACHINE = 'arn:aws:states:us-east-1:123456789012:stateMachine:Backfill';
const devConfig = extractRuntimeConfigOf(resolveEnvironment(JSON.parse(readFileSync('cdk.json', 'utf8')).context.environments, 'dev'));
const PROFILE = extractionProfile(devConfig).id;

let local: LocalAws;
let stub: AwsApiStub;
let restoreEnv: () => void;

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['node', 'longsight', ...args], { out: (s) => out.push(s), err: (s) => err.push(s) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}
const callsOf = (op: string) => stub.calls.filter((c) => c.op === op);
const put = (bucket: string, key: string, body: string) => local.clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));

function exportLine(profile: string, dt: string, jobId: string): string {
  const r: Partial<ExportRecord> = { job_id: jobId, profile, dt, question: 'q', answer: 'a' };
  return JSON.stringify(r) + '\n';
}

beforeAll(async () => {
  local = await startLocalAws();
  stub = await startAwsApiStub();
  restoreEnv = applyEnv(stub.env);
  const r = local.resources;
  await local.clients.s3.send(new CreateBucketCommand({ Bucket: RESULTS_BUCKET }));
  const outputs: Record<string, string> = {
    VideoBucketName: r.bucket,
    JobQueueUrl: r.queueUrl,
    DeadLetterQueueUrl: r.dlqUrl,
    JobsTableName: r.jobsTable,
    AnswersTableName: r.answersTable,
    [ARCHIVE_OUTPUTS.profile]: PROFILE,
    [ARCHIVE_OUTPUTS.stateMachine]: STATE_MACHINE,
    [ARCHIVE_OUTPUTS.resultsBucket]: RESULTS_BUCKET,
    [ARCHIVE_OUTPUTS.workGroup]: 'longsight-dev',
    [ARCHIVE_OUTPUTS.database]: 'longsight_dev',
    [ARCHIVE_OUTPUTS.usdPerGpuHour]: '1.006',
    [ARCHIVE_OUTPUTS.instanceType]: 'g5.xlarge',
    [ARCHIVE_OUTPUTS.jobsPerWorker]: '1',
  };
  stub.on['CloudFormation.DescribeStacks'] = (b) => {
    if (b.StackName !== STACK) throw new StubAwsError('ValidationError', `Stack with id ${String(b.StackName)} does not exist`);
    return describeStacksXml(STACK, outputs);
  };
});
afterAll(async () => {
  restoreEnv?.();
  await stub?.stop();
  await local?.stop();
});

describe('query --stack: Athena in the stack\'s workgroup over the Glue table', () => {
  const storage = {
    Columns: EXPORT_DATA_COLUMNS.map((c) => ({ Name: c.name, Type: c.type })),
    Location: 's3://longsight-videos/index/',
    InputFormat: 'org.apache.hadoop.mapred.TextInputFormat',
    OutputFormat: 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat',
    SerdeInfo: { SerializationLibrary: 'org.openx.data.jsonserde.JsonSerDe' },
  };
  const pA = 'p-aaaaaaaaaaaa';

  beforeAll(async () => {
    const b = local.resources.bucket;
    await put(b, `index/profile=${pA}/dt=2026-01-01/j-${'1'.repeat(32)}.jsonl`, exportLine(pA, '2026-01-01', `j-${'1'.repeat(32)}`));
    await put(b, `index/profile=${pA}/dt=2026-01-02/j-${'2'.repeat(32)}.jsonl`, exportLine(pA, '2026-01-02', `j-${'2'.repeat(32)}`));
    await put(b, `index/profile=adhoc/dt=2026-01-02/j-${'3'.repeat(32)}.jsonl`, exportLine('adhoc', '2026-01-02', `j-${'3'.repeat(32)}`));
    stub.on['AWSGlue.GetTable'] = (body) => ({ Table: { Name: body.Name, DatabaseName: body.DatabaseName, StorageDescriptor: storage, PartitionKeys: [{ Name: 'profile', Type: 'string' }, { Name: 'dt', Type: 'string' }] } });
    // Glue's partitions: one there before, on the first of two pages; the rest as registered.
    const registered: string[][] = [];
    stub.on['AWSGlue.GetPartitions'] = (body) =>
      body.NextToken
        ? { Partitions: registered.map((Values) => ({ Values })) }
        : { Partitions: [{ Values: [pA, '2026-01-01'], DatabaseName: 'longsight_dev', TableName: EXPORT_TABLE_NAME }], NextToken: 'page-2' };
    stub.on['AWSGlue.BatchCreatePartition'] = (body) => {
      registered.push(...(body.PartitionInputList as { Values: string[] }[]).map((p) => p.Values));
      return { Errors: [] };
    };
    let polls = 0;
    stub.on['AmazonAthena.StartQueryExecution'] = (body) => ({ QueryExecutionId: String(body.QueryString).includes('nope') ? 'q-bad' : 'q-good' });
    stub.on['AmazonAthena.GetQueryExecution'] = (body) => {
      if (body.QueryExecutionId === 'q-bad') {
        return { QueryExecution: { QueryExecutionId: 'q-bad', StatementType: 'DML', Status: { State: 'FAILED', StateChangeReason: "COLUMN_NOT_FOUND: line 1:8: Column 'nope' cannot be resolved or requester is not authorized to access requested resources" } } };
      }
      polls++;
      return { QueryExecution: { QueryExecutionId: 'q-good', StatementType: 'DML', Status: { State: polls < 2 ? 'RUNNING' : 'SUCCEEDED' }, Statistics: { DataScannedInBytes: 2_500_000 } } };
    };
    const columns = [
      { Name: 'profile', Type: 'varchar', Label: 'profile' },
      { Name: 'n', Type: 'bigint', Label: 'n' },
      { Name: 'ts', Type: 'array', Label: 'ts' },
    ];
    const row = (...v: (string | undefined)[]) => ({ Data: v.map((x) => (x === undefined ? {} : { VarCharValue: x })) });
    stub.on['AmazonAthena.GetQueryResults'] = (body) =>
      body.NextToken
        ? { ResultSet: { Rows: [row('adhoc', '1', undefined)], ResultSetMetadata: { ColumnInfo: columns } } }
        : { ResultSet: { Rows: [row('profile', 'n', 'ts'), row(pA, '9007199254740993', '[0.5, 1.5]')], ResultSetMetadata: { ColumnInfo: columns } }, NextToken: 'rows-2' };
  });

  it('registers the partitions S3 has and Glue lacks, runs the SQL in the workgroup, and pages the result (header row dropped)', async () => {
    const sql = 'SELECT profile, count(*) AS n, array_agg(1.5) AS ts FROM answers GROUP BY profile';
    const r = await cli('query', sql, '--stack', STACK, '--json');
    expect(r.code).toBe(0);
    expect(r.out.split('\n').map((l) => JSON.parse(l))).toEqual([
      { profile: pA, n: '9007199254740993', ts: [0.5, 1.5] },
      { profile: 'adhoc', n: 1, ts: null },
    ]);
    const created = callsOf('AWSGlue.BatchCreatePartition');
    expect(created).toHaveLength(1);
    expect(created[0].body).toMatchObject({ DatabaseName: 'longsight_dev', TableName: 'answers' });
    const inputs = created[0].body.PartitionInputList as { Values: string[]; StorageDescriptor: { Location: string; SerdeInfo: unknown } }[];
    expect(inputs.map((p) => p.Values).sort()).toEqual([['adhoc', '2026-01-02'], [pA, '2026-01-02']]);
    expect(inputs.find((p) => p.Values[0] === 'adhoc')!.StorageDescriptor).toMatchObject({ Location: 's3://longsight-videos/index/profile=adhoc/dt=2026-01-02/', SerdeInfo: storage.SerdeInfo });
    expect(callsOf('AWSGlue.GetPartitions')).toHaveLength(2);
    expect(callsOf('AmazonAthena.StartQueryExecution')[0].body).toMatchObject({ QueryString: sql, WorkGroup: 'longsight-dev', QueryExecutionContext: { Database: 'longsight_dev', Catalog: 'AwsDataCatalog' } });
    expect(callsOf('AmazonAthena.GetQueryResults').map((c) => c.body.NextToken)).toEqual([undefined, 'rows-2']);
    expect(r.err).toMatch(/registered 2 new partitions/);
    expect(r.err).toMatch(/Athena q-good: scanned 2\.50 MB/);
  });

  it("a statement Athena refuses ends with Athena's reason, not a stack trace; registered partitions are not registered again", async () => {
    const r = await cli('query', 'SELECT nope FROM answers', '--stack', STACK);
    expect(callsOf('AWSGlue.BatchCreatePartition')).toHaveLength(1);
    expect(r.code).toBe(1);
    expect(r.err).toBe("longsight: query failed: COLUMN_NOT_FOUND: line 1:8: Column 'nope' cannot be resolved or requester is not authorized to access requested resources");
  });

  it('names a stack that does not exist', async () => {
    const r = await cli('query', 'SELECT 1', '--stack', 'Longsight-nope');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/cannot read the outputs of stack "Longsight-nope": Stack with id Longsight-nope does not exist/);
  });
});

describe('index --stack: the Distributed Map started, followed and summed up', () => {
  let started: { name: string; input: Record<string, unknown> }[] = [];
  const arnOf = (name: string) => `arn:aws:states:us-east-1:123456789012:execution:Backfill:${name}`;

  beforeAll(async () => {
    const b = local.resources.bucket;
    for (const k of ['shelf/a.mp4', 'shelf/nested/b.mov', 'shelf/notes.txt']) await put(b, k, `bytes of ${k}`);
    stub.on['AWSStepFunctions.StartExecution'] = async (body) => {
      const name = String(body.name);
      started.push({ name, input: JSON.parse(String(body.input)) });
      // What the map run leaves in the results bucket (ResultWriter: JSONL, FLATTEN).
      const succeeded = [
        { outcome: 'queued', bucket: b, key: 'shelf/a.mp4', jobId: `j-${'a'.repeat(32)}`, frames: 64 },
        { outcome: 'ignored', bucket: b, key: 'shelf/notes.txt', why: 'not a video suffix (or under frames/ or index/)' },
      ];
      const failed = [{ ExecutionArn: 'x', Input: JSON.stringify({ Key: 'shelf/nested/b.mov', Etag: '"e"', Size: 9 }), Status: 'FAILED', Error: 'Lambda.Unknown', Cause: 'Task timed out after 900.00 seconds' }];
      await put(RESULTS_BUCKET, `backfill/${name}/0f3c/SUCCEEDED_0.jsonl`, succeeded.map((x) => JSON.stringify(x)).join('\n') + '\n');
      await put(RESULTS_BUCKET, `backfill/${name}/0f3c/FAILED_0.json`, JSON.stringify(failed));
      await put(RESULTS_BUCKET, `backfill/${name}/0f3c/manifest.json`, '{}');
      return { executionArn: arnOf(name), startDate: Date.now() / 1000 };
    };
    stub.on['AWSStepFunctions.DescribeExecution'] = (body) => ({ executionArn: body.executionArn, stateMachineArn: STATE_MACHINE, status: 'SUCCEEDED', startDate: Date.now() / 1000 });
    stub.on['AWSStepFunctions.ListMapRuns'] = (body) => ({ mapRuns: [{ executionArn: body.executionArn, mapRunArn: `${body.executionArn}/BucketListing:1`, stateMachineArn: STATE_MACHINE, startDate: Date.now() / 1000 }] });
    stub.on['AWSStepFunctions.DescribeMapRun'] = (body) => ({
      mapRunArn: body.mapRunArn,
      status: 'SUCCEEDED',
      itemCounts: { pending: 0, running: 0, succeeded: 2, failed: 1, timedOut: 0, aborted: 0, total: 3, resultsWritten: 3 },
    });
  });
  beforeEach(() => {
    started = [];
  });

  it('a prefix: the map lists it itself; progress from the map run, the summary from its result files', async () => {
    const r = await cli('index', 's3://longsight-videos/shelf/', '--stack', STACK, '--json');
    expect(started).toHaveLength(1);
    expect(started[0].input).toEqual({ source: 'prefix', prefix: 'shelf/' });
    expect(started[0].name).toMatch(/^index-\d{8}T\d{6}Z-[0-9a-f]{4}$/);
    expect(callsOf('AWSStepFunctions.StartExecution').at(-1)!.body.stateMachineArn).toBe(STATE_MACHINE);
    const summary = JSON.parse(r.out);
    expect(summary).toMatchObject({ profile: PROFILE, status: 'SUCCEEDED', indexed: 1, notVideos: { 'not a video suffix (or under frames/ or index/)': 1 } });
    expect(summary.failed).toEqual([{ key: 'shelf/nested/b.mov', reason: 'extraction failed after retries: Lambda.Unknown: Task timed out after 900.00 seconds' }]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`--attach ${arnOf(started[0].name)}`);
  });

  it('--limit: the CLI selects the videos without a job and the map reads that list from the results bucket', async () => {
    const r = await cli('index', 's3://longsight-videos/shelf/', '--stack', STACK, '--limit', '1', '--detach');
    expect(r.code).toBe(0);
    expect(started).toHaveLength(1);
    const itemsKey = `backfill/${started[0].name}/items.json`;
    expect(started[0].input).toEqual({ source: 'list', itemsKey });
    const items = JSON.parse(await (await local.clients.s3.send(new GetObjectCommand({ Bucket: RESULTS_BUCKET, Key: itemsKey }))).Body!.transformToString());
    expect(items).toEqual([{ Key: 'shelf/a.mp4', Etag: expect.stringMatching(/^"[0-9a-f]{32}"$/), Size: 'bytes of shelf/a.mp4'.length }]);
  });

  it('--attach follows a run started earlier', async () => {
    const r = await cli('index', '--stack', STACK, '--attach', arnOf('index-20260101T000000Z-0000'), '--json');
    expect(started).toEqual([]);
    expect(JSON.parse(r.out)).toMatchObject({ status: 'SUCCEEDED', listed: 3 });
  });

  it("--dry-run prices with the environment's settings from cdk.json when its profile is the deployed one", async () => {
    const r = await cli('index', 's3://longsight-videos/shelf/', '--stack', STACK, '--dry-run', '--json');
    expect(r.code).toBe(0);
    expect(started).toEqual([]);
    const dry = JSON.parse(r.out);
    expect(dry).toMatchObject({ dryRun: true, profile: PROFILE, toIndex: ['shelf/a.mp4', 'shelf/nested/b.mov'], cost: { jobs: 2, framesPerJob: devConfig.extraction.frames, instanceType: 'g5.xlarge' } });
  });
});
