/**
 * What `longsight run` knows about each of its jobs between polls, and the status line drawn from
 * it. Every redraw is computed from one snapshot, so the counts and the per-job details always
 * agree (a job is "extracting" until its message is sent, then "queued", "running", "done" or
 * "failed": never queued in the counts while its extraction shows beside them).
 */
import type { JobItem } from '../../lib/contracts';
import { progressText } from './job-report';

export interface TrackedJob {
  file: string;
  key: string;
  jobId?: string;
  /** When its upload began (the start of its end-to-end time). */
  uploadStartedAt: number;
  /** The job item as last read. */
  item?: JobItem;
  /** While its extraction runs: frames done of total. */
  extraction?: { done: number; total: number };
  /** Extraction outcome when the Lambda did not queue a job (ignored, or errors after its retries). */
  extractError?: string;
  /** The extraction handler said it queued the job (before the next poll reads its item). */
  queued?: boolean;
  /** Printed as finished. */
  printed?: boolean;
  answers?: number;
}

export type JobPhase = 'extracting' | 'queued' | 'running' | 'done' | 'failed';

export function phaseOf(t: TrackedJob): JobPhase {
  if (t.extractError) return 'failed';
  const s = t.item?.status;
  if (s === 'DONE') return 'done';
  if (s === 'FAILED') return 'failed';
  if (s === 'RUNNING') return 'running';
  // The extraction creates the item (QUEUED) before it samples a frame; the job is queued once its message is sent.
  if (t.item?.enqueuedAt || t.queued) return 'queued';
  return 'extracting';
}

/** Per-job detail for the status line: the running jobs' stages first, then extractions. */
function detail(t: TrackedJob, phase: JobPhase, now: number): string | undefined {
  if (phase === 'running') return `${t.key} ${t.item?.progress ? progressText(t.item.progress, now) : 'starting'}`;
  if (phase === 'extracting') return `${t.key} extracting${t.extraction ? ` ${t.extraction.done}/${t.extraction.total} frames` : ''}`;
  return undefined;
}

/** `jobs 3: 1 extracting · 0 queued · 1 running · 1 done · 0 failed │ a.mp4 vision 12/16 frames · 41% · ETA 9 s │ …` */
export function statusText(tracked: readonly TrackedJob[], now = Date.now(), maxDetails = 2): string {
  const n: Record<JobPhase, number> = { extracting: 0, queued: 0, running: 0, done: 0, failed: 0 };
  const running: string[] = [];
  const extracting: string[] = [];
  for (const t of tracked) {
    const phase = phaseOf(t);
    n[phase]++;
    const d = detail(t, phase, now);
    if (d) (phase === 'running' ? running : extracting).push(d);
  }
  const details = [...running, ...extracting];
  const shown = details.slice(0, maxDetails);
  if (details.length > shown.length) shown.push(`+${details.length - shown.length} more`);
  const counts = `${n.extracting ? `${n.extracting} extracting · ` : ''}${n.queued} queued · ${n.running} running · ${n.done} done · ${n.failed} failed`;
  return [`jobs ${tracked.length}: ${counts}`, ...shown].join(' │ ');
}
