/**
 * The archive report (`longsight index --report`): for one index profile, per folder under the
 * prefix and in total, the videos found, indexed (DONE), pending, not indexed, failed (by reason),
 * hours of video, GPU hours and their cost, and p50/p95 job latency (created → DONE). From the
 * survey (listing + job items): the same locally and deployed, no query engine needed. Pure.
 */
import type { JobItem } from '../../lib/contracts';
import { countsByLabel, formatDuration } from './progress';
import type { Survey, SurveyedVideo } from './survey';

export interface GpuPrice {
  usdPerGpuHour: number;
  /** Jobs sharing one GPU (a job's GPU time is its worker time divided by this). */
  jobsPerWorker: number;
}

export interface ReportRow {
  group: string;
  found: number;
  indexed: number;
  pending: number;
  notIndexed: number;
  failed: number;
  failedReasons: string[];
  videoHours: number;
  gpuHours: number;
  costUsd?: number;
  p50LatencySeconds?: number;
  p95LatencySeconds?: number;
}

/** The folder a key sits in, one level below `prefix` ("talks/"), or "(top level)". */
export function groupOf(key: string, prefix: string): string {
  const rest = key.slice(prefix.length);
  const slash = rest.indexOf('/');
  return slash < 0 ? '(top level)' : `${prefix}${rest.slice(0, slash + 1)}`;
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], p: number): number | undefined {
  if (!sorted.length) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function row(group: string, videos: readonly SurveyedVideo[], price?: GpuPrice): ReportRow {
  const jobs = videos.map((v) => v.job).filter((j): j is JobItem => Boolean(j));
  const done = jobs.filter((j) => j.status === 'DONE');
  const failed = jobs.filter((j) => j.status === 'FAILED');
  const gpuHours = done.reduce((s, j) => s + (j.timings?.totalMs ?? 0), 0) / 3_600_000 / (price?.jobsPerWorker ?? 1);
  const latencies = done.map((j) => (Date.parse(j.updatedAt) - Date.parse(j.createdAt)) / 1000).sort((a, b) => a - b);
  return {
    group,
    found: videos.length,
    indexed: done.length,
    pending: jobs.length - done.length - failed.length,
    notIndexed: videos.length - jobs.length,
    failed: failed.length,
    failedReasons: countsByLabel(failed.map((j) => j.reason ?? 'no reason recorded'), 5),
    videoHours: done.reduce((s, j) => s + (j.frames?.durationSeconds ?? 0), 0) / 3600,
    gpuHours,
    ...(price ? { costUsd: gpuHours * price.usdPerGpuHour } : {}),
    p50LatencySeconds: percentile(latencies, 50),
    p95LatencySeconds: percentile(latencies, 95),
  };
}

/** One row per folder under `prefix` (sorted), then the total. */
export function archiveReport(survey: Survey, prefix: string, price?: GpuPrice): ReportRow[] {
  const groups = new Map<string, SurveyedVideo[]>();
  for (const v of survey.videos) {
    const g = groupOf(v.object.key, prefix);
    groups.set(g, [...(groups.get(g) ?? []), v]);
  }
  const rows = [...groups.keys()].sort().map((g) => row(g, groups.get(g)!, price));
  return [...rows, row('total', survey.videos, price)];
}

const hours = (h: number) => (h < 0.1 ? `${(h * 60).toFixed(1)} min` : `${h.toFixed(2)} h`);
const seconds = (s: number | undefined) => (s === undefined ? '–' : formatDuration(s));

export function formatReport(rows: readonly ReportRow[], o: { profile: string; prefix: string; priced: boolean }): string {
  const lines = [`Archive report for s3 prefix "${o.prefix || '(whole bucket)'}", index profile ${o.profile}:`];
  for (const r of rows) {
    lines.push(
      `${r.group === 'total' ? 'TOTAL' : r.group}: ${r.found} videos found · ${r.indexed} indexed · ${r.pending} pending · ${r.notIndexed} not indexed · ${r.failed} failed`,
      `   ${hours(r.videoHours)} of video · ${hours(r.gpuHours)} GPU · ${r.costUsd === undefined ? (o.priced ? '$0.00' : 'cost n/a (no GPU price: a local run)') : `$${r.costUsd.toFixed(2)}`} · job latency p50 ${seconds(r.p50LatencySeconds)}, p95 ${seconds(r.p95LatencySeconds)}`,
      ...r.failedReasons.map((f) => `   failed: ${f}`),
    );
  }
  return lines.join('\n');
}
