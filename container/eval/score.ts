/**
 * Scores saved responses the way lmms-eval does (extract.ts): each response's letter against the
 * answer, accuracy per task, and the benchmark's headline score: accuracy over every question
 * (VideoMME, LongVideoBench) or the mean of the per-task accuracies (MLVU's M-Avg). Scores are
 * percentages. Pure.
 */
import { z } from 'zod';
import { LETTERS, type Benchmark } from './benchmarks';

/** One saved response: `longsight eval score` reads these (results files hold them too). */
export const PredictionSchema = z.looseObject({
  id: z.union([z.string().min(1), z.number()]).transform(String),
  response: z.string(),
  answer: z.string().min(1),
  task: z.string().optional(),
  /** The option letters (LongVideoBench's random fallback draws from them; default A–D, A–E for LongVideoBench). */
  choices: z.array(z.string()).optional(),
  /** The sweep setting a results row belongs to. */
  setting: z.string().optional(),
});
export type Prediction = z.infer<typeof PredictionSchema>;

export interface ScoredItem {
  id: string;
  extracted: string;
  correct: boolean;
  /** LongVideoBench: no letter in the response, so one was drawn. */
  random?: boolean;
}

export interface TaskScore {
  score: number;
  correct: number;
  total: number;
}

export interface Score {
  benchmark: string;
  /** Percent. */
  score: number;
  /** How `score` is formed: over every question, or the mean over the tasks present. */
  overall: 'items' | 'tasks';
  correct: number;
  total: number;
  tasks: Record<string, TaskScore>;
  items: ScoredItem[];
}

const pct = (correct: number, total: number) => (total === 0 ? 0 : (100 * correct) / total);

export function defaultChoices(bench: Benchmark): string[] {
  return [...LETTERS.slice(0, bench.name === 'longvideobench' ? 5 : 4)];
}

export function scoreItem(bench: Benchmark, p: Pick<Prediction, 'id' | 'response' | 'answer' | 'choices'>): ScoredItem {
  const e = bench.extract(p.response, { id: p.id, choices: p.choices ?? defaultChoices(bench) });
  return { id: p.id, extracted: e.letter, correct: e.letter === p.answer, ...(e.random ? { random: true } : {}) };
}

export function scorePredictions(bench: Benchmark, predictions: readonly Pick<Prediction, 'id' | 'response' | 'answer' | 'task' | 'choices'>[]): Score {
  const items = predictions.map((p) => scoreItem(bench, p));
  const byTask = new Map<string, TaskScore>();
  predictions.forEach((p, i) => {
    const t = byTask.get(p.task ?? 'all') ?? { score: 0, correct: 0, total: 0 };
    t.total += 1;
    t.correct += items[i].correct ? 1 : 0;
    byTask.set(p.task ?? 'all', t);
  });
  const tasks = Object.fromEntries([...byTask.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([k, t]) => [k, { ...t, score: pct(t.correct, t.total) }]));
  const correct = items.filter((x) => x.correct).length;
  const taskScores = Object.values(tasks).map((t) => t.score);
  const score = bench.overall === 'tasks' ? (taskScores.length ? taskScores.reduce((a, b) => a + b, 0) / taskScores.length : 0) : pct(correct, items.length);
  return { benchmark: bench.name, score, overall: bench.overall, correct, total: items.length, tasks, items };
}

/** The lines of a JSONL predictions file, validated; errors name the line. */
export function parsePredictions(text: string, file: string): Prediction[] {
  const out: Prediction[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch (e) {
      throw new Error(`${file}:${i + 1}: not JSON (${(e as Error).message})`);
    }
    const r = PredictionSchema.safeParse(json);
    if (!r.success) throw new Error(`${file}:${i + 1}: ${r.error.issues.map((x) => `${x.path.join('.') || '(line)'}: ${x.message}`).join('; ')}`);
    out.push(r.data);
  });
  return out;
}

/** One setting's predictions, each id once: a file with several settings needs `setting`. */
export function selectPredictions(all: Prediction[], file: string, setting?: string): Prediction[] {
  const settings = [...new Set(all.map((p) => p.setting).filter((s): s is string => s !== undefined))];
  if (setting !== undefined && !settings.includes(setting)) throw new Error(`${file}: no predictions for setting "${setting}" (it holds ${settings.length ? settings.join(', ') : 'none'})`);
  if (setting === undefined && settings.length > 1) throw new Error(`${file} holds ${settings.length} settings (${settings.join(', ')}): pass --setting NAME`);
  const chosen = setting === undefined ? all : all.filter((p) => p.setting === setting);
  const seen = new Set<string>();
  for (const p of chosen) {
    if (seen.has(p.id)) throw new Error(`${file}: id ${JSON.stringify(p.id)} appears more than once${setting ? ` in setting ${setting}` : ''}`);
    seen.add(p.id);
  }
  return chosen;
}
