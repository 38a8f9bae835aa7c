/** What every benchmark provides: its questions as the pipeline asks them, and how lmms-eval scores them. */
import type { Extracted } from '../extract';

export const BENCHMARKS = ['videomme', 'mlvu', 'longvideobench'] as const;
export type BenchmarkName = (typeof BENCHMARKS)[number];

/** The lmms-eval release whose prompts, generation settings and scoring these benchmarks follow. */
export const LMMS_EVAL = { version: 'v0.5', commit: '8f142bc3082100dbb39aa9b15916c586f3237d09' } as const;

/** One multiple-choice question about one video. */
export interface EvalItem {
  /** The benchmark's id for the question. */
  id: string;
  /** The video it is about: items of one video are asked in one job (one prefill). */
  videoId: string;
  /** The video file. */
  videoPath: string;
  /** The text the model reads after the video (lmms-eval's doc_to_text). */
  prompt: string;
  /** The correct option's letter. */
  answer: string;
  /** The option letters. */
  choices: string[];
  /** What the per-task score groups by. */
  task: string;
}

export interface Benchmark {
  name: BenchmarkName;
  title: string;
  /** lmms-eval's generation_kwargs.max_new_tokens (decoding is greedy: temperature 0). */
  maxNewTokens: number;
  /** 'items': accuracy over every question; 'tasks': the mean of the per-task accuracies (MLVU's M-Avg). */
  overall: 'items' | 'tasks';
  /** What `tasks` means for this benchmark, in words. */
  taskLabel: string;
  /** The questions as downloaded (see the README for each layout). */
  load(dir: string): Promise<EvalItem[]>;
  extract(response: string, item: Pick<EvalItem, 'id' | 'choices'>): Extracted;
}

export const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** A dataset that is not laid out as downloaded: the message says what was expected where. */
export class DatasetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatasetError';
  }
}
