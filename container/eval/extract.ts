/**
 * Answer extraction, rule for rule as lmms-eval v0.5 (commit 8f142bc3, tasks unchanged since v0.4)
 * scores each benchmark, so a score here is the score lmms-eval would give the same responses:
 *  - VideoMME (`videomme/utils.py: extract_characters_regex`): strip the answer prefixes, give up
 *    on a long answer with no capital A–D, else the first capital A–D anywhere.
 *  - MLVU (`mlvu/utils.py: extract_characters_regex`): the character before the first ")"; with no
 *    ")", the whole stripped response.
 *  - LongVideoBench (`longvideobench/utils.py: parse_multi_choice_response`): strip the prefixes,
 *    the first capital A–E; when there is none (or a long answer has none), a random choice, as
 *    the LongVideoBench authors do. Ours is drawn from the item id, so a re-score is reproducible.
 * Pure functions.
 */
import { createHash } from 'node:crypto';

export interface Extracted {
  /** The option letter the response names ('' when the rule found none). */
  letter: string;
  /** LongVideoBench only: the letter was drawn at random because the response names none. */
  random?: boolean;
}

/**
 * VideoMME's prefixes as the Python list holds them: two pairs of adjacent literals there have no
 * comma between them, so Python joins them ("The best option isThe correct option is"); kept as is.
 */
const VIDEOMME_PREFIXES = [
  'The best answer is',
  'The correct answer is',
  'The answer is',
  'The answer',
  'The best option isThe correct option is',
  'Best answer:Best option:',
];

const LVB_PREFIXES = ['The best answer is', 'The correct answer is', 'The answer is', 'The answer', 'The best option is', 'The correct option is', 'Best answer:', 'Best option:'];

/** Python's str.strip() and len(s.split()). */
const strip = (s: string) => s.trim();
const wordCount = (s: string) => s.split(/\s+/).filter(Boolean).length;
const removeAll = (s: string, prefixes: readonly string[]) => prefixes.reduce((acc, p) => acc.split(p).join(''), s);

export function extractVideoMme(response: string): Extracted {
  const s = removeAll(strip(response), VIDEOMME_PREFIXES);
  if (wordCount(s) > 10 && !/[ABCD]/.test(s)) return { letter: '' };
  return { letter: /[ABCD]/.exec(s)?.[0] ?? '' };
}

export function extractMlvu(response: string): Extracted {
  const s = strip(response);
  const close = s.indexOf(')');
  // Python's s[i-1:i]: with i = 0 that is s[-1:0], the empty string (so is JS's slice(-1, 0)).
  return { letter: close >= 0 ? s.slice(close - 1, close) : s };
}

/** A choice drawn from the item id: the same response of the same item always gets the same letter. */
export function seededChoice(id: string, choices: readonly string[]): string {
  const n = createHash('sha256').update(id).digest().readUInt32BE(0);
  return choices[n % choices.length];
}

export function extractLongVideoBench(response: string, choices: readonly string[], id: string): Extracted {
  const s = removeAll(strip(response), LVB_PREFIXES);
  const random = () => ({ letter: seededChoice(id, choices), random: true });
  if (wordCount(s) > 10 && !/[ABCDE]/.test(s)) return random();
  const m = /[ABCDE]/.exec(s);
  return m ? { letter: m[0] } : random();
}
