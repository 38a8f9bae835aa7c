/**
 * `longsight query "SQL"`: SQL over the `answers` table (one row per answer of every finished job).
 * Deployed (--stack): Athena in the stack's workgroup over the Glue table, after registering new
 * partitions. Locally: DuckDB over the export files, fetched from the bucket into .cache/index/.
 * A statement the engine refuses ends with the engine's own message (exit 1).
 */
import { join, resolve } from 'node:path';
import { AthenaClient } from '@aws-sdk/client-athena';
import { GlueClient } from '@aws-sdk/client-glue';
import type { Command } from 'commander';
import { ARCHIVE_OUTPUTS } from '../../../lib/contracts';
import { ATHENA_USD_PER_TB_SCANNED, queryAthena, syncPartitions } from '../../archive/athena-table';
import { queryExportFiles, syncExportCache } from '../../archive/local-table';
import { formatCsv, formatJsonLines, formatTable, QueryError, type QueryResult } from '../../archive/query-result';
import type { TargetOptions } from '../../local/targets';
import { CliError, EXIT } from '../exit-codes';
import { addTargetOptions, connect, type Connected } from '../target-options';
import { noteTo } from './index-bucket';
import { longsightHome } from '../../local/home';

export interface QueryOptions extends TargetOptions {
  json?: boolean;
  csv?: boolean;
  /** Local: where export files are cached (default .cache/index). */
  cacheDir?: string;
}

/** Local cache folder of a deployment's export: per S3 endpoint (each embedded run has its own) and bucket. */
function cacheDirOf(t: Connected, root: string): string {
  const endpoint = t.env.AWS_ENDPOINT_URL_S3 ?? t.env.AWS_ENDPOINT_URL ?? `aws-${t.env.AWS_REGION ?? process.env.AWS_REGION ?? 'default'}`;
  return join(root, endpoint.replace(/^https?:\/\//, '').replace(/[^A-Za-z0-9.-]/g, '_'));
}

async function runOnAthena(t: Connected, sql: string, note: (s: string) => void): Promise<QueryResult> {
  const o = t.outputs!;
  const workGroup = o[ARCHIVE_OUTPUTS.workGroup];
  const database = o[ARCHIVE_OUTPUTS.database];
  if (!workGroup || !database) throw new CliError(`${t.source} has no Athena workgroup (outputs ${ARCHIVE_OUTPUTS.workGroup}, ${ARCHIVE_OUTPUTS.database}): deploy this version of Longsight first`);
  const athena = new AthenaClient({});
  const glue = new GlueClient({});
  try {
    const target = { workGroup, database, bucket: t.resources.bucket };
    const added = await syncPartitions(glue, t.clients.s3, target);
    if (added) note(`registered ${added} new partition${added === 1 ? '' : 's'} (profile/day) of the answers table`);
    const r = await queryAthena(athena, target, sql);
    const mb = r.scannedBytes / 1e6;
    note(`Athena ${r.queryExecutionId}: scanned ${mb.toFixed(2)} MB (≈ $${((Math.max(r.scannedBytes, 10e6) / 1e12) * ATHENA_USD_PER_TB_SCANNED).toFixed(6)})`);
    return r;
  } finally {
    athena.destroy();
    glue.destroy();
  }
}

async function runLocally(t: Connected, sql: string, cacheRoot: string, note: (s: string) => void): Promise<QueryResult> {
  const sync = await syncExportCache(t.clients.s3, t.resources.bucket, cacheDirOf(t, cacheRoot));
  if (sync.fetched || sync.removed) note(`export cache: ${sync.fetched} file${sync.fetched === 1 ? '' : 's'} fetched, ${sync.removed} removed (${sync.files.length} in all)`);
  return queryExportFiles(sync.files, sql);
}

export async function queryCommand(sql: string, o: QueryOptions, print: (s: string) => void, note: (s: string) => void = (s) => process.stderr.write(`${s}\n`)): Promise<number> {
  if (!sql.trim()) throw new CliError('give a SQL statement, e.g. longsight query "SELECT count(*) AS n FROM answers"', EXIT.usage);
  if (o.json && o.csv) throw new CliError('--json and --csv: choose one', EXIT.usage);
  const t = await connect(o);
  try {
    const r = t.outputs ? await runOnAthena(t, sql, note) : await runLocally(t, sql, resolve(o.cacheDir ?? join(longsightHome(), 'index')), note);
    print(o.json ? formatJsonLines(r) : o.csv ? formatCsv(r) : formatTable(r));
    return EXIT.ok;
  } catch (e) {
    if (e instanceof QueryError) throw new CliError(`query failed: ${e.message}`, EXIT.failed);
    throw e;
  } finally {
    t.close();
  }
}

export function registerQueryCommand(program: Command, print: (s: string) => void, setExit: (code: number) => void): void {
  addTargetOptions(
    program
      .command('query')
      .description('Run SQL over the answers table (one row per answer): Athena with --stack, DuckDB over the exported files locally')
      .argument('<sql>', 'one SQL statement, e.g. "SELECT count(*) AS n FROM answers"')
      .option('--json', 'one JSON object per row')
      .option('--csv', 'CSV with a header line'),
  ).action(async (sql: string, o: QueryOptions, cmd: Command) => setExit(await queryCommand(sql, o, print, noteTo(cmd))));
}
