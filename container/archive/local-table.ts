/**
 * The `answers` table locally: the export files (index/…/<jobId>.jsonl) fetched from the bucket
 * into a cache (only new or changed ones), and DuckDB (@duckdb/node-api, in process) reading them
 * as a view with the contract's columns, in the same order and under the same name as the Glue
 * table Athena reads, so one SQL statement works on both.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { EXPORT_COLUMNS, EXPORT_TABLE_NAME, INDEX_PREFIX, parseExportKey, type ExportColumnType } from '../../lib/contracts';
import { mapLimit } from '../../lib/map-limit';
import { numberOrText, QueryError, type QueryResult } from './query-result';

const DUCKDB_TYPES: Record<ExportColumnType, string> = {
  string: 'VARCHAR',
  bigint: 'BIGINT',
  int: 'INTEGER',
  double: 'DOUBLE',
  'array<double>': 'DOUBLE[]',
};

/** The view's definition over `files` (an empty table with the same columns when there are none). */
export function answersViewSql(files: readonly string[]): string {
  const quote = (s: string) => `'${s.replace(/'/g, "''")}'`;
  if (files.length === 0) {
    return `CREATE TABLE ${EXPORT_TABLE_NAME} (${EXPORT_COLUMNS.map((c) => `${c.name} ${DUCKDB_TYPES[c.type]}`).join(', ')})`;
  }
  const columns = `{${EXPORT_COLUMNS.map((c) => `${c.name}: '${DUCKDB_TYPES[c.type]}'`).join(', ')}}`;
  return (
    `CREATE VIEW ${EXPORT_TABLE_NAME} AS SELECT ${EXPORT_COLUMNS.map((c) => c.name).join(', ')} ` +
    `FROM read_json([${files.map(quote).join(', ')}], format = 'newline_delimited', columns = ${columns})`
  );
}

export interface CacheSync {
  files: string[];
  fetched: number;
  removed: number;
}

/**
 * Brings `cacheDir/<bucket>/index/…` level with the bucket's export: new and rewritten files are
 * fetched (an ETag kept beside each tells), files gone from the bucket are removed.
 */
export async function syncExportCache(s3: S3Client, bucket: string, cacheDir: string, concurrency = 8): Promise<CacheSync> {
  const root = join(cacheDir, bucket);
  const etagsFile = join(root, 'etags.json');
  const etags: Record<string, string> = existsSync(etagsFile) ? JSON.parse(readFileSync(etagsFile, 'utf8')) : {};
  const listed = new Map<string, string>();
  let token: string | undefined;
  do {
    const r = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: INDEX_PREFIX, ContinuationToken: token }));
    for (const o of r.Contents ?? []) if (o.Key && parseExportKey(o.Key)) listed.set(o.Key, (o.ETag ?? '').replace(/"/g, ''));
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
  } while (token);

  const stale = [...listed].filter(([key, etag]) => etags[key] !== etag || !existsSync(join(root, key)));
  await mapLimit(stale, concurrency, async ([key, etag]) => {
    const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const file = join(root, key);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, await r.Body!.transformToByteArray());
    etags[key] = etag;
  });
  let removed = 0;
  for (const key of Object.keys(etags)) {
    if (listed.has(key)) continue;
    rmSync(join(root, key), { force: true });
    delete etags[key];
    removed++;
  }
  mkdirSync(root, { recursive: true });
  writeFileSync(etagsFile, JSON.stringify(etags));
  const files = [...listed.keys()].sort().map((k) => join(root, k));
  return { files, fetched: stale.length, removed };
}

/** Runs one SQL statement over the `answers` view of `files` in an in-memory DuckDB. */
export async function queryExportFiles(files: readonly string[], sql: string): Promise<QueryResult> {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const db = await DuckDBInstance.create(':memory:');
  const connection = await db.connect();
  try {
    await connection.run(answersViewSql(files));
    let reader;
    try {
      reader = await connection.runAndReadAll(sql);
    } catch (e) {
      throw new QueryError((e as Error).message);
    }
    const types = reader.columnTypes().map((t) => String(t).toLowerCase());
    const columns = reader.columnNames().map((name, i) => ({ name, type: types[i] }));
    // JSON values: BIGINT and DECIMAL arrive as text; numbers they can be exactly become numbers again.
    const rows = reader.getRowsJson().map((row) => row.map((v, i) => (typeof v === 'string' && /^(u?(tiny|small|big|huge)?int(eger)?|decimal)/.test(types[i]) ? numberOrText(types[i].replace(/\(.*$/, ''), v) : v)));
    return { columns, rows };
  } finally {
    connection.closeSync();
    db.closeSync();
  }
}
