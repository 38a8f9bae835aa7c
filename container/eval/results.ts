/**
 * The results file: JSON lines, one per answered question (its setting, response, extracted
 * letter, whether it is correct, and the figures its job recorded). Appended job by job, so an
 * interrupted run loses at most the jobs in flight, and a rerun skips what is there.
 */
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { PoolingSchedule, RopeMode } from '../../lib/contracts';

/** What the question's job recorded (the job item's timings, tokens and settings as applied). */
export interface JobFigures {
  jobId: string;
  /** Questions the job asked (they shared one prefill of the video). */
  questions: number;
  totalMs?: number;
  extractMs?: number;
  queueWaitMs?: number;
  frameLoadMs?: number;
  visionMs?: number;
  prefillMs?: number;
  decodeMs?: number;
  framesUsed?: number;
  visualTokens?: number;
  ropeMode?: string;
  ropeScale?: number;
  poolingUsed?: PoolingSchedule;
  transferBytes?: number;
  fallback?: string;
  modelId?: string;
}

export interface ResultRow {
  benchmark: string;
  setting: string;
  frames: number;
  rope?: RopeMode;
  pooling?: PoolingSchedule;
  timeAware: boolean;
  id: string;
  videoId: string;
  task: string;
  choices: string[];
  answer: string;
  response: string;
  extracted: string;
  correct: boolean;
  random?: boolean;
  job: JobFigures;
  at: string;
}

export const rowKey = (setting: string, id: string) => `${setting}\u0000${id}`;

/** The rows of one benchmark in `file` (none when it does not exist); a torn last line (a crash mid-write) is skipped. */
export function readResults(file: string, benchmark: string): { rows: ResultRow[]; skipped: number } {
  if (!existsSync(file)) return { rows: [], skipped: 0 };
  const rows: ResultRow[] = [];
  let skipped = 0;
  const lines = readFileSync(file, 'utf8').split('\n');
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let row: ResultRow;
    try {
      row = JSON.parse(line) as ResultRow;
    } catch {
      // A line torn by a crash mid-write: its job is asked again.
      skipped++;
      return;
    }
    if (row.benchmark === benchmark) rows.push(row);
  });
  return { rows, skipped };
}

/** True when `file` is non-empty and its last byte is not a newline (a line torn by a crash). */
function endsMidLine(file: string): boolean {
  if (!existsSync(file) || statSync(file).size === 0) return false;
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, statSync(file).size - 1);
    return b[0] !== 0x0a;
  } finally {
    closeSync(fd);
  }
}

export function appendResults(file: string, rows: readonly ResultRow[]): void {
  if (rows.length === 0) return;
  mkdirSync(dirname(file), { recursive: true });
  // A torn line stays on its own line (and is skipped when read), never glued to the next row.
  const lead = endsMidLine(file) ? '\n' : '';
  appendFileSync(file, lead + rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
}
