/**
 * What an eval reports, per setting: the score (per task and overall, scored as lmms-eval does),
 * and the figures its jobs recorded (time on the worker per video, visual tokens, RoPE scale, the
 * bytes that crossed the runtime boundary) beside the planner's peak memory for the setting. As
 * text for the terminal, JSON, and a markdown table in the paper's form. Pure.
 */
import { LMMS_EVAL, type Benchmark } from './benchmarks';
import { poolingText, seriesName, settingName, type EvalSetting } from './grid';
import type { ResultRow } from './results';
import { scorePredictions, type Score } from './score';

export interface SettingReport {
  setting: string;
  frames: number;
  rope?: string;
  pooling?: string;
  timeAware: boolean;
  /** The line this setting belongs to in the plots (everything but the frame count). */
  series: string;
  score: Omit<Score, 'items'>;
  /** Questions whose letter LongVideoBench's rule drew at random. */
  randomLetters: number;
  jobs: number;
  /** Median over the setting's jobs (one per video) of their time on the worker (claim to DONE), seconds. */
  secondsPerVideo?: number;
  /** Median of the visual tokens the decoder held, and the RoPE scale s applied. */
  visualTokens?: number;
  ropeScale?: number;
  /** What the jobs ran with (the environment's defaults where the setting left them open). */
  ropeApplied?: string;
  poolingApplied?: string;
  /** Median bytes a job moved across the runtime boundary. */
  transferBytes?: number;
  /** The planner's peak memory for the setting (`longsight plan`), bytes, and for which target. */
  plannedPeakBytes?: number;
  plannedFor?: string;
}

const median = (xs: number[]): number | undefined => {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

export type MemoryPlanner = (s: EvalSetting) => { peakBytes: number; target: string } | undefined;

export function reportSettings(bench: Benchmark, rows: readonly ResultRow[], settings: EvalSetting[], planner?: MemoryPlanner): SettingReport[] {
  return settings.map((s) => {
    const name = settingName(s);
    const mine = rows.filter((r) => r.setting === name);
    const { items, ...score } = scorePredictions(bench, mine.map((r) => ({ id: r.id, response: r.response, answer: r.answer, task: r.task, choices: r.choices })));
    const jobs = [...new Map(mine.map((r) => [r.job.jobId, r.job])).values()];
    const values = (f: (j: (typeof jobs)[number]) => number | undefined) => jobs.map(f).filter((x): x is number => typeof x === 'number');
    const plan = planner?.(s);
    const p = jobs.find((j) => j.poolingUsed)?.poolingUsed;
    return {
      setting: name,
      frames: s.frames,
      rope: s.rope,
      pooling: s.pooling ? poolingText(s.pooling) : undefined,
      timeAware: s.timeAware,
      series: seriesName(s),
      score,
      randomLetters: items.filter((i) => i.random).length,
      jobs: jobs.length,
      secondsPerVideo: median(values((j) => (j.totalMs === undefined ? undefined : j.totalMs / 1000))),
      visualTokens: median(values((j) => j.visualTokens)),
      ropeScale: median(values((j) => j.ropeScale)),
      ropeApplied: jobs.find((j) => j.ropeMode)?.ropeMode,
      poolingApplied: p ? poolingText(p) : undefined,
      transferBytes: median(values((j) => j.transferBytes)),
      plannedPeakBytes: plan?.peakBytes,
      plannedFor: plan?.target,
    };
  });
}

const f1 = (x: number | undefined) => (x === undefined ? '–' : x.toFixed(1));
const gib = (b: number | undefined) => (b === undefined ? '–' : (b / 2 ** 30).toFixed(2));
const mb = (b: number | undefined) => (b === undefined ? '–' : (b / 1e6).toFixed(1));
const headline = (bench: Benchmark, r: SettingReport) => {
  const tasks = Object.keys(r.score.tasks).length;
  return bench.overall === 'tasks' ? `M-Avg ${f1(r.score.score)} (mean of ${tasks} task${tasks === 1 ? '' : 's'})` : `accuracy ${f1(r.score.score)}`;
};

/** The terminal summary: per setting, the overall score, each task's, and the job figures. */
export function formatReport(bench: Benchmark, reports: SettingReport[]): string {
  const lines: string[] = [`${bench.title} · scored as lmms-eval ${LMMS_EVAL.version} scores it`];
  for (const r of reports) {
    lines.push('');
    lines.push(`${r.setting}: ${headline(bench, r)} · ${r.score.correct}/${r.score.total} questions correct`);
    const width = Math.max(8, ...Object.keys(r.score.tasks).map((t) => t.length));
    for (const [task, t] of Object.entries(r.score.tasks)) lines.push(`  ${task.padEnd(width)}  ${f1(t.score).padStart(5)}  (${t.correct}/${t.total})`);
    if (r.randomLetters) lines.push(`  ${r.randomLetters} response(s) named no option: a letter was drawn (LongVideoBench's rule)`);
    lines.push(
      `  ${r.jobs} job${r.jobs === 1 ? '' : 's'} · ${f1(r.secondsPerVideo)} s per video on the worker (median) · ${r.visualTokens ?? '–'} visual tokens · s = ${r.ropeScale?.toFixed(2) ?? '–'} (${r.ropeApplied ?? '–'}) · pooling ${r.poolingApplied ?? '–'} · ${mb(r.transferBytes)} MB across the runtime boundary · planned peak memory ${gib(r.plannedPeakBytes)} GiB${r.plannedFor ? ` (${r.plannedFor})` : ''}`,
    );
  }
  return lines.join('\n');
}

/** The paper's table form: one row per setting, and the per-task scores below. */
export function markdownReport(bench: Benchmark, reports: SettingReport[], meta: { results: string; model?: string; when: string }): string {
  const out: string[] = [
    `# ${bench.title}: ${reports.length} setting${reports.length === 1 ? '' : 's'}`,
    '',
    `Results: \`${meta.results}\` · model: ${meta.model ?? 'as the workers load it'} · ${meta.when} · prompts, greedy decoding, max new tokens (${bench.maxNewTokens}) and scoring as lmms-eval ${LMMS_EVAL.version} (${LMMS_EVAL.commit.slice(0, 8)}).`,
    '',
    `| frames | RoPE | pooling (K,s_h,s_l) | time-aware | score | correct / questions | visual tokens | s | time per video (s, median) | planned peak memory (GiB) | MB across the boundary (median) |`,
    `|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|`,
    ...reports.map(
      (r) =>
        `| ${r.frames} | ${r.ropeApplied ?? r.rope ?? 'default'} | ${r.poolingApplied ?? r.pooling ?? 'default'} | ${r.timeAware ? 'yes' : 'no'} | ${f1(r.score.score)} | ${r.score.correct} / ${r.score.total} | ${r.visualTokens ?? '–'} | ${r.ropeScale?.toFixed(2) ?? '–'} | ${f1(r.secondsPerVideo)} | ${gib(r.plannedPeakBytes)}${r.plannedFor ? ` (${r.plannedFor})` : ''} | ${mb(r.transferBytes)} |`,
    ),
    '',
    `Score: ${bench.overall === 'tasks' ? 'M-Avg, the mean of the per-task accuracies' : 'accuracy over every question'} (percent). Per ${bench.taskLabel}:`,
    '',
  ];
  const tasks = [...new Set(reports.flatMap((r) => Object.keys(r.score.tasks)))].sort();
  out.push(`| ${bench.taskLabel} | ${reports.map((r) => r.setting).join(' | ')} |`);
  out.push(`|---|${reports.map(() => '---:').join('|')}|`);
  for (const t of tasks) out.push(`| ${t} | ${reports.map((r) => (r.score.tasks[t] ? `${f1(r.score.tasks[t].score)} (${r.score.tasks[t].correct}/${r.score.tasks[t].total})` : '–')).join(' | ')} |`);
  return out.join('\n') + '\n';
}
