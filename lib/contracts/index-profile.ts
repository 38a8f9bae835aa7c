/**
 * Index profiles. An environment's model id, inference settings and standard questions are its
 * index profile; its short stable hash (`p-<12 hex>`) is part of every job id (job-id.ts) and of
 * the export's layout (index-export.ts). Changing the model, a setting or the questions makes a new
 * profile, so `longsight index` indexes the same videos again while the old answers stay queryable.
 *
 * What the hash covers, and why it stays stable across code versions:
 *  - the model id, as configured (`model.id`);
 *  - the inference settings with every value equal to the schema's default left out, so a setting
 *    added later with a default that keeps today's behaviour does not change existing profiles
 *    (a changed default in code does not either: bump PROFILE_RULE_VERSION when it must);
 *  - the standard questions as a set (normalised text, order and repeats ignored).
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { mergeQuestions, QuestionListSchema } from './questions';
import { DEFAULT_SETTINGS, InferenceSettingsSchema, type InferenceSettings } from './settings';

/** Part of every hash: raise it when the meaning of an unchanged configuration changes. */
export const PROFILE_RULE_VERSION = 1;
export const PROFILE_ID_PATTERN = /^p-[0-9a-f]{12}$/;
/** The profile column of jobs made outside any environment profile (`longsight ask`), and of messages written before profiles. */
export const ADHOC_PROFILE = 'adhoc';

export const IndexProfileInputSchema = z.strictObject({
  modelId: z.string().min(1),
  settings: InferenceSettingsSchema,
  questions: QuestionListSchema,
});
export type IndexProfileInput = z.input<typeof IndexProfileInputSchema>;

export interface IndexProfile {
  /** `p-<12 hex>`. */
  id: string;
  modelId: string;
  settings: InferenceSettings;
  /** Normalised, deduplicated, in the configured order. */
  questions: string[];
}

/** Values that differ from `defaults`, recursively (objects only; arrays and scalars compare whole). */
function withoutDefaults(value: unknown, defaults: unknown): unknown {
  if (!isPlainObject(value) || !isPlainObject(defaults)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined) continue;
    if (k in defaults && canonicalJson(v) === canonicalJson((defaults as Record<string, unknown>)[k])) continue;
    out[k] = k in defaults ? withoutDefaults(v, (defaults as Record<string, unknown>)[k]) : v;
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** JSON with object keys sorted at every level: the same value always gives the same text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (isPlainObject(value)) {
    const keys = Object.keys(value).filter((k) => value[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function indexProfile(input: IndexProfileInput): IndexProfile {
  const p = IndexProfileInputSchema.parse(input);
  const questions = mergeQuestions(p.questions);
  const hashed = {
    rule: PROFILE_RULE_VERSION,
    modelId: p.modelId,
    settings: withoutDefaults(p.settings, DEFAULT_SETTINGS),
    questions: questions.map((q) => q.id).sort(),
  };
  const id = `p-${createHash('sha256').update(canonicalJson(hashed)).digest('hex').slice(0, 12)}`;
  return { id, modelId: p.modelId, settings: p.settings, questions: questions.map((q) => q.text) };
}
