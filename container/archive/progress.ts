/** The backfill's progress line (counts and ETA) and its end-of-run summary. Pure. */

export interface ProgressCounts {
  done: number;
  total: number;
  indexed: number;
  skipped: number;
  failed: number;
  elapsedMs: number;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** ETA from the rate so far (seconds), or undefined before the first object is done. */
export function etaSeconds(done: number, total: number, elapsedMs: number): number | undefined {
  if (done <= 0 || elapsedMs <= 0) return undefined;
  return ((total - done) * elapsedMs) / done / 1000;
}

export function formatProgress(c: ProgressCounts, what = 'videos'): string {
  const pct = c.total ? Math.floor((100 * c.done) / c.total) : 100;
  const width = 20;
  const filled = c.total ? Math.round((width * c.done) / c.total) : width;
  const eta = etaSeconds(c.done, c.total, c.elapsedMs);
  return (
    `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${c.done}/${c.total} ${what} (${pct}%) · ${c.indexed} indexed · ${c.skipped} skipped · ${c.failed} failed` +
    ` · ETA ${eta === undefined ? '…' : formatDuration(eta)}`
  );
}

/** `n thing(s)`. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Counts by label, largest first: "3 × reason a; 1 × reason b". */
export function countsByLabel(labels: readonly string[], max = 10): string[] {
  const m = new Map<string, number>();
  for (const l of labels) m.set(l, (m.get(l) ?? 0) + 1);
  const sorted = [...m.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const shown = sorted.slice(0, max).map(([label, n]) => `${n} × ${label}`);
  if (sorted.length > max) shown.push(`… and ${sorted.length - max} other reasons`);
  return shown;
}

/** What a backfill did, for its last lines (and --json). */
export interface BackfillSummary {
  listed: number;
  videos: number;
  /** Videos whose job under the profile existed before this run (not handed off). */
  alreadyIndexed: number;
  /** Videos left for a later run by --limit. */
  deferred: number;
  notVideos: Record<string, number>;
  indexed: number;
  skipped: { key: string; why: string }[];
  failed: { key: string; reason: string }[];
}

export function formatSummary(s: BackfillSummary, maxFailures = 20): string {
  const lines = [
    `${plural(s.listed, 'object')} listed: ${plural(s.videos, 'video')}, ${plural(Object.values(s.notVideos).reduce((a, b) => a + b, 0), 'other object')}` +
      (Object.keys(s.notVideos).length ? ` (${Object.entries(s.notVideos).map(([why, n]) => `${n} × ${why}`).join('; ')})` : ''),
    `Indexed ${plural(s.indexed, 'video')} (jobs queued) · skipped ${s.alreadyIndexed + s.skipped.length} (${s.alreadyIndexed} indexed before this run${s.skipped.length ? `; ${countsByLabel(s.skipped.map((x) => x.why)).join('; ')}` : ''}) · failed ${s.failed.length}` +
      (s.deferred ? ` · ${plural(s.deferred, 'video')} left for a later run (--limit)` : ''),
    ...s.failed.slice(0, maxFailures).map((f) => `  ✘ ${f.key}: ${f.reason}`),
  ];
  if (s.failed.length > maxFailures) lines.push(`  … and ${s.failed.length - maxFailures} more failures (longsight index --report groups them by reason)`);
  return lines.join('\n');
}
