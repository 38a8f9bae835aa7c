/**
 * The deployed backfill, from the CLI's side: start the stack's state machine (a Distributed Map
 * over the bucket listing, lib/stack/backfill-state-machine.ts), follow its map run's item counts,
 * and read the run's results (JSON lines of the extraction's outcomes, written by the map to the
 * results bucket) for the summary. The run does not need the CLI: closing it detaches, and
 * `longsight index --stack NAME --attach <execution ARN>` follows it again.
 */
import { DescribeExecutionCommand, DescribeMapRunCommand, ListMapRunsCommand, StartExecutionCommand, type SFNClient } from '@aws-sdk/client-sfn';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { BACKFILL_RESULTS_PREFIX } from '../../lib/contracts';
import type { HandOffOutcome } from './hand-off';
import type { SurveyedVideo } from './survey';

/** `index-20260102T030405Z-ab12`: a valid, sortable execution name. */
export function executionName(now = new Date(), random = Math.random()): string {
  return `index-${now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${Math.floor(random * 0x10000).toString(16).padStart(4, '0')}`;
}

/** What the state machine takes: a prefix to list, or the key of a list the CLI wrote. */
export type BackfillInput = { source: 'prefix'; prefix: string } | { source: 'list'; itemsKey: string };

/** A selected video as an s3:listObjectsV2 item (the shape both maps' item processor reads). */
export function listItem(v: SurveyedVideo): { Key: string; Etag: string; Size: number } {
  return { Key: v.object.key, Etag: `"${v.object.etag}"`, Size: v.object.size };
}

export interface StartedBackfill {
  executionArn: string;
  name: string;
}

/** Starts a run over `prefix`, or over `videos` (written first as a JSON list to the results bucket). */
export async function startBackfill(
  clients: { sfn: SFNClient; s3: S3Client },
  o: { stateMachineArn: string; resultsBucket: string; prefix: string; videos?: readonly SurveyedVideo[]; name?: string },
): Promise<StartedBackfill> {
  const name = o.name ?? executionName();
  let input: BackfillInput = { source: 'prefix', prefix: o.prefix };
  if (o.videos) {
    const itemsKey = `${BACKFILL_RESULTS_PREFIX}${name}/items.json`;
    await clients.s3.send(new PutObjectCommand({ Bucket: o.resultsBucket, Key: itemsKey, Body: JSON.stringify(o.videos.map(listItem)), ContentType: 'application/json' }));
    input = { source: 'list', itemsKey };
  }
  const r = await clients.sfn.send(new StartExecutionCommand({ stateMachineArn: o.stateMachineArn, name, input: JSON.stringify(input) }));
  return { executionArn: r.executionArn!, name };
}

export interface MapRunProgress {
  /** RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED (the execution's). */
  status: string;
  total: number;
  succeeded: number;
  failed: number;
  pending: number;
  running: number;
  /** Why the execution failed, when it did. */
  error?: string;
}

/** The execution's status and its map run's item counts (zeros until the map run starts). */
export async function backfillProgress(sfn: SFNClient, executionArn: string): Promise<MapRunProgress> {
  const e = await sfn.send(new DescribeExecutionCommand({ executionArn }));
  const runs = await sfn.send(new ListMapRunsCommand({ executionArn }));
  const p: MapRunProgress = { status: e.status ?? 'RUNNING', total: 0, succeeded: 0, failed: 0, pending: 0, running: 0 };
  if (e.status === 'FAILED' || e.status === 'TIMED_OUT' || e.status === 'ABORTED') p.error = [e.error, e.cause].filter(Boolean).join(': ') || e.status;
  const mapRunArn = runs.mapRuns?.[0]?.mapRunArn;
  if (!mapRunArn) return p;
  const c = (await sfn.send(new DescribeMapRunCommand({ mapRunArn }))).itemCounts;
  return { ...p, total: c?.total ?? 0, succeeded: c?.succeeded ?? 0, failed: (c?.failed ?? 0) + (c?.timedOut ?? 0) + (c?.aborted ?? 0), pending: c?.pending ?? 0, running: c?.running ?? 0 };
}

/** The execution name from its ARN (arn:…:execution:<state machine>:<name>). */
export function executionNameOf(executionArn: string): string {
  return executionArn.slice(executionArn.lastIndexOf(':') + 1);
}

/**
 * The run's outcomes from its result files: SUCCEEDED_*.json(l) hold the child outputs, flattened
 * (one extraction outcome per line: {outcome, key, jobId, reason|why|frames}); FAILED_*.json(l)
 * hold failed child executions (Input, Error, Cause).
 */
export function outcomesFromResults(files: readonly { key: string; body: string }[]): HandOffOutcome[] {
  const out: HandOffOutcome[] = [];
  for (const f of files) {
    const name = f.key.slice(f.key.lastIndexOf('/') + 1);
    if (!/^(SUCCEEDED|FAILED)_\d+\.jsonl?$/.test(name)) continue;
    const records: Record<string, unknown>[] = name.endsWith('.jsonl')
      ? f.body.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l))
      : (JSON.parse(f.body) as Record<string, unknown>[]);
    for (const r of records) {
      if (name.startsWith('FAILED')) {
        let key = '?';
        try {
          key = (JSON.parse(String(r.Input ?? '{}')) as { Key?: string }).Key ?? '?';
        } catch {
          /* the input is not JSON: keep '?' */
        }
        out.push({ key, jobId: '', result: 'failed', reason: `extraction failed after retries: ${[r.Error, r.Cause].filter(Boolean).join(': ') || 'no error given'}` });
        continue;
      }
      const key = String(r.key ?? '?');
      const jobId = String(r.jobId ?? '');
      switch (r.outcome) {
        case 'queued':
          out.push({ key, jobId, result: 'indexed', frames: Number(r.frames ?? 0) });
          break;
        case 'failed':
          out.push({ key, jobId, result: 'failed', reason: String(r.reason ?? '') });
          break;
        case 'duplicate':
          out.push({ key, jobId, result: 'skipped', why: `already indexed (job ${r.status ?? 'exists'})` });
          break;
        case 'in-progress':
          out.push({ key, jobId, result: 'skipped', why: 'being extracted by another invocation' });
          break;
        default:
          out.push({ key, jobId, result: 'skipped', why: String(r.why ?? r.outcome ?? 'ignored') });
      }
    }
  }
  return out;
}

/** Reads the run's result files from the results bucket. */
export async function readBackfillResults(s3: S3Client, resultsBucket: string, name: string): Promise<HandOffOutcome[]> {
  const files: { key: string; body: string }[] = [];
  let token: string | undefined;
  do {
    const r = await s3.send(new ListObjectsV2Command({ Bucket: resultsBucket, Prefix: `${BACKFILL_RESULTS_PREFIX}${name}/`, ContinuationToken: token }));
    for (const o of r.Contents ?? []) {
      if (!/\/(SUCCEEDED|FAILED)_\d+\.jsonl?$/.test(o.Key ?? '')) continue;
      const body = await (await s3.send(new GetObjectCommand({ Bucket: resultsBucket, Key: o.Key! }))).Body!.transformToString('utf8');
      files.push({ key: o.Key!, body });
    }
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
  } while (token);
  return outcomesFromResults(files);
}
