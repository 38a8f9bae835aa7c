/**
 * `longsight jobs [--status S] [--video KEY] [--since T] [--limit N] [--json]`: jobs newest first,
 * from the jobs table's byStatus / byVideo indexes — of a deployment, of a local run still going,
 * or of the local history of finished runs.
 */
import { JOB_STATUSES, type JobItem, type JobStatus } from '../../../lib/contracts';
import { listJobs } from '../../local/job-queries';
import { costLine, duration, endToEnd, progressText } from '../../local/job-report';
import type { TargetOptions } from '../../local/targets';
import { CliError, EXIT } from '../exit-codes';
import { connect } from '../target-options';

export interface JobsOptions extends TargetOptions {
  status?: string;
  video?: string;
  since?: string;
  limit?: number;
  json?: boolean;
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** `--since`: an ISO date/time, or a span back from now (45s, 30m, 2h, 7d, 1w). */
export function parseSince(v: string, now = Date.now()): string {
  const rel = /^(\d+(?:\.\d+)?)\s*([smhdw])$/i.exec(v.trim());
  if (rel) return new Date(now - Number(rel[1]) * UNITS[rel[2].toLowerCase()] * 1000).toISOString();
  const t = Date.parse(v);
  if (!Number.isNaN(t) && /^\d{4}-\d{2}-\d{2}/.test(v.trim())) return new Date(t).toISOString();
  throw new CliError(`--since: expected a time like 2026-05-01 or 2026-05-01T12:00Z, or a span back from now like 30m, 2h, 7d; got "${v}"`, EXIT.usage);
}

export function parseStatus(v: string): JobStatus {
  const s = v.toUpperCase();
  if (!(JOB_STATUSES as readonly string[]).includes(s)) throw new CliError(`--status: expected one of ${JOB_STATUSES.join(', ')}; got "${v}"`, EXIT.usage);
  return s as JobStatus;
}

/** One row: where the job is, or how it ended, and what it cost. */
function row(j: JobItem, now: number): string[] {
  const when = j.updatedAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  let state: string;
  if (j.status === 'RUNNING') state = j.progress ? progressText(j.progress, now) : 'starting';
  else if (j.status === 'FAILED') state = (j.reason ?? '').slice(0, 80);
  else if (j.status === 'DONE') {
    const e2e = endToEnd(j);
    state = [e2e ? `${duration(e2e.ms)} end to end` : undefined, j.cost ? costLine(j) : undefined].filter(Boolean).join(' · ');
  } else state = j.enqueuedAt ? `queued since ${j.enqueuedAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}` : 'extracting';
  return [j.jobId, j.status, when, j.videoUri, state];
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join('  ').trimEnd()).join('\n');
}

export async function jobsCommand(o: JobsOptions, print: (s: string) => void): Promise<number> {
  const status = o.status ? parseStatus(o.status) : undefined;
  const since = o.since ? parseSince(o.since) : undefined;
  const t = await connect(o, { tablesOnly: true });
  try {
    const videoUri = o.video ? (o.video.startsWith('s3://') ? o.video : `s3://${t.resources.bucket}/${o.video.replace(/^\/+/, '')}`) : undefined;
    const jobs = await listJobs(t.clients.ddb, t.resources.jobsTable, { status, videoUri, since, limit: o.limit });
    if (o.json) {
      for (const j of jobs) print(JSON.stringify(j));
      return EXIT.ok;
    }
    const filters = [status && `status ${status}`, videoUri && `video ${videoUri}`, since && `since ${since}`].filter(Boolean).join(', ');
    if (jobs.length === 0) {
      print(`no jobs${filters ? ` (${filters})` : ''} in ${t.source}`);
      return EXIT.ok;
    }
    const now = Date.now();
    print(table([['JOB', 'STATUS', 'UPDATED', 'VIDEO', 'PROGRESS / RESULT'], ...jobs.map((j) => row(j, now))]));
    print(`${jobs.length} job${jobs.length === 1 ? '' : 's'}${filters ? ` (${filters})` : ''}, newest first, from ${t.source}${jobs.length === (o.limit ?? 50) ? ` (--limit ${o.limit ?? 50}: there may be more)` : ''}`);
    return EXIT.ok;
  } finally {
    await t.close();
  }
}
