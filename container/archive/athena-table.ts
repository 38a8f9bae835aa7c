/**
 * The `answers` table deployed: Athena runs the SQL in the stack's workgroup (results encrypted in
 * the results bucket, the scan limit enforced) over the Glue table on index/. Before each query the
 * partitions (profile=…/dt=…) found in S3 and not yet in Glue are registered (BatchCreatePartition,
 * with the table's own storage settings), so new days and new profiles are queryable at once
 * without a crawler or MSCK REPAIR. Results are read page by page (GetQueryResults, 1000 rows).
 */
import { GetQueryExecutionCommand, GetQueryResultsCommand, StartQueryExecutionCommand, type AthenaClient, type Row } from '@aws-sdk/client-athena';
import { BatchCreatePartitionCommand, GetPartitionsCommand, GetTableCommand, type GlueClient, type PartitionInput } from '@aws-sdk/client-glue';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { EXPORT_TABLE_NAME, INDEX_PREFIX } from '../../lib/contracts';
import { numberOrText, QueryError, type QueryResult } from './query-result';

export interface AthenaTarget {
  workGroup: string;
  database: string;
  /** The video bucket whose index/ the table reads. */
  bucket: string;
}

/** What Athena bills: USD per TB scanned (us-east-1, 10 MB minimum per query; https://aws.amazon.com/athena/pricing/). */
export const ATHENA_USD_PER_TB_SCANNED = 5;

/** The immediate sub-prefixes of `prefix` (one S3 "folder" level). */
async function subPrefixes(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const out: string[] = [];
  let token: string | undefined;
  do {
    const r = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token }));
    for (const p of r.CommonPrefixes ?? []) if (p.Prefix) out.push(p.Prefix);
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
  } while (token);
  return out;
}

/** The export's partitions in S3: [profile, dt] for each index/profile=…/dt=…/ prefix. */
export async function exportPartitionsInS3(s3: S3Client, bucket: string): Promise<[string, string][]> {
  const out: [string, string][] = [];
  for (const p of await subPrefixes(s3, bucket, INDEX_PREFIX)) {
    const profile = /^index\/profile=([^/]+)\/$/.exec(p)?.[1];
    if (!profile) continue;
    for (const d of await subPrefixes(s3, bucket, p)) {
      const dt = /\/dt=(\d{4}-\d{2}-\d{2})\/$/.exec(d)?.[1];
      if (dt) out.push([profile, dt]);
    }
  }
  return out;
}

/** The BatchCreatePartition inputs for partitions in S3 but not in Glue (100 a call, Glue's limit). */
export function missingPartitionInputs(inS3: readonly [string, string][], inGlue: ReadonlySet<string>, storage: PartitionInput['StorageDescriptor'], bucket: string): PartitionInput[][] {
  const missing = inS3
    .filter(([p, d]) => !inGlue.has(`${p}\n${d}`))
    .map(([profile, dt]) => ({ Values: [profile, dt], StorageDescriptor: { ...storage, Location: `s3://${bucket}/${INDEX_PREFIX}profile=${profile}/dt=${dt}/` } }));
  const batches: PartitionInput[][] = [];
  for (let i = 0; i < missing.length; i += 100) batches.push(missing.slice(i, i + 100));
  return batches;
}

/** Registers the partitions S3 holds and Glue lacks; resolves with how many were added. */
export async function syncPartitions(glue: GlueClient, s3: S3Client, t: AthenaTarget): Promise<number> {
  const table = await glue.send(new GetTableCommand({ DatabaseName: t.database, Name: EXPORT_TABLE_NAME }));
  const inGlue = new Set<string>();
  let token: string | undefined;
  do {
    const r = await glue.send(new GetPartitionsCommand({ DatabaseName: t.database, TableName: EXPORT_TABLE_NAME, NextToken: token }));
    for (const p of r.Partitions ?? []) inGlue.add((p.Values ?? []).join('\n'));
    token = r.NextToken;
  } while (token);
  const storage = table.Table?.StorageDescriptor;
  let added = 0;
  for (const batch of missingPartitionInputs(await exportPartitionsInS3(s3, t.bucket), inGlue, storage, t.bucket)) {
    const r = await glue.send(new BatchCreatePartitionCommand({ DatabaseName: t.database, TableName: EXPORT_TABLE_NAME, PartitionInputList: batch }));
    // Another query registering the same partition at the same time is no failure.
    const errors = (r.Errors ?? []).filter((e) => e.ErrorDetail?.ErrorCode !== 'AlreadyExistsException');
    if (errors.length) throw new Error(`Glue refused partitions: ${errors.map((e) => `${(e.PartitionValues ?? []).join('/')}: ${e.ErrorDetail?.ErrorMessage}`).join('; ')}`);
    added += batch.length - (r.Errors?.length ?? 0);
  }
  return added;
}

/** One cell as JSON: numbers for numeric types, booleans, arrays Athena prints as JSON where they parse. */
function cell(type: string, v: string | undefined): unknown {
  if (v === undefined) return null;
  if (/^(tinyint|smallint|integer|bigint|double|float|real|decimal)/.test(type)) return numberOrText(type.replace(/\(.*$/, ''), v);
  if (type === 'boolean') return v === 'true';
  if (type === 'array') {
    try {
      return JSON.parse(v);
    } catch {
      return v;
    }
  }
  return v;
}

export interface AthenaQueryOptions {
  pollMs?: number;
  /** Called while the query runs, with Athena's state. */
  onState?: (state: string) => void;
}

export interface AthenaQueryResult extends QueryResult {
  queryExecutionId: string;
  scannedBytes: number;
}

/** Runs `sql`; a failed query is a QueryError with Athena's reason. */
export async function queryAthena(athena: AthenaClient, t: AthenaTarget, sql: string, o: AthenaQueryOptions = {}): Promise<AthenaQueryResult> {
  const started = await athena.send(new StartQueryExecutionCommand({ QueryString: sql, WorkGroup: t.workGroup, QueryExecutionContext: { Database: t.database, Catalog: 'AwsDataCatalog' } }));
  const id = started.QueryExecutionId!;
  let execution;
  for (;;) {
    execution = (await athena.send(new GetQueryExecutionCommand({ QueryExecutionId: id }))).QueryExecution;
    const state = execution?.Status?.State ?? 'QUEUED';
    o.onState?.(state);
    if (state === 'SUCCEEDED') break;
    if (state === 'FAILED' || state === 'CANCELLED') throw new QueryError(execution?.Status?.StateChangeReason ?? `the query ended ${state}`);
    await new Promise((r) => setTimeout(r, o.pollMs ?? 500));
  }
  let columns: QueryResult['columns'] = [];
  const rows: unknown[][] = [];
  let token: string | undefined;
  let first = true;
  do {
    const page = await athena.send(new GetQueryResultsCommand({ QueryExecutionId: id, NextToken: token, MaxResults: 1000 }));
    if (first) columns = (page.ResultSet?.ResultSetMetadata?.ColumnInfo ?? []).map((c) => ({ name: c.Name ?? c.Label ?? '', type: (c.Type ?? 'varchar').toLowerCase() }));
    let data: Row[] = page.ResultSet?.Rows ?? [];
    // A SELECT's first row repeats the column names.
    if (first && execution?.StatementType === 'DML' && data.length) data = data.slice(1);
    for (const r of data) rows.push((r.Data ?? []).map((d, i) => cell(columns[i]?.type ?? 'varchar', d.VarCharValue)));
    token = page.NextToken;
    first = false;
  } while (token);
  return { columns, rows, queryExecutionId: id, scannedBytes: execution?.Statistics?.DataScannedInBytes ?? 0 };
}
