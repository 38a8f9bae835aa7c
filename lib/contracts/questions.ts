/** Questions: text rules, stable ids, and the per-video sidecar `<stem>.questions.json`. */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { MAX_FRAMES, PoolingScheduleSchema, RopeExtensionSchema, SamplingSchema } from './settings';

export const MAX_QUESTION_CHARS = 2000;
export const MAX_QUESTIONS = 64;

/**
 * A question as the model will read it. Line breaks are kept (a multiple-choice question is several
 * lines: the question, its options, an instruction; benchmark prompts end with a line break);
 * every other run of whitespace becomes one space, and spaces at either end are dropped.
 */
export const QuestionTextSchema = z
  .string()
  .transform((s) => s.replace(/\r\n?/g, '\n').replace(/[^\S\n]+/g, ' ').replace(/^ +| +$/g, ''))
  .pipe(
    z
      .string()
      .refine((s) => /\S/.test(s), 'question is empty')
      .max(MAX_QUESTION_CHARS, `question is longer than ${MAX_QUESTION_CHARS} characters`)
      // Control characters would be tokenised as noise and break logs (a line break is text).
      .refine((s) => !/[\u0000-\u0009\u000b-\u001f\u007f]/.test(s), 'question contains control characters')
      // Half of a surrogate pair is not a character: DynamoDB (UTF-8) could not store it as written.
      .refine((s) => !/[\ud800-\udfff]/u.test(s), 'question contains an unpaired UTF-16 surrogate (not valid Unicode)'),
  );

/** The environment's default questions: at least one, at most MAX_QUESTIONS. */
export const QuestionListSchema = z.array(QuestionTextSchema).min(1).max(MAX_QUESTIONS);

export const QuestionSchema = z.strictObject({
  id: z.string().regex(/^q-[0-9a-f]{12}$/, 'question id must look like q-<12 hex>'),
  text: QuestionTextSchema,
});
export type Question = z.infer<typeof QuestionSchema>;

/** A question's id is a hash of its normalised text, so the same question has the same id in every job. */
export function questionId(text: string): string {
  const normal = QuestionTextSchema.parse(text);
  return `q-${createHash('sha256').update(normal).digest('hex').slice(0, 12)}`;
}

/** Defaults first, then the sidecar's, each once (by normalised text), in order. */
export function mergeQuestions(...lists: readonly string[][]): Question[] {
  const seen = new Set<string>();
  const out: Question[] = [];
  for (const list of lists) {
    for (const raw of list) {
      const text = QuestionTextSchema.parse(raw);
      const id = questionId(text);
      if (seen.has(id)) continue;
      seen.add(id);
      out.push({ id, text });
    }
  }
  if (out.length > MAX_QUESTIONS) throw new Error(`too many questions: ${out.length} (at most ${MAX_QUESTIONS})`);
  return out;
}

/** The optional sidecar uploaded next to a video: extra questions and per-video overrides. */
export const SidecarSchema = z.strictObject({
  questions: z.array(QuestionTextSchema).max(MAX_QUESTIONS).default([]),
  /** false: ask only this sidecar's questions, not the environment's default ones as well. */
  defaultQuestions: z.boolean().default(true),
  frames: z.int().min(1).max(MAX_FRAMES).optional(),
  /** Per-video overrides of the environment's inference settings. */
  pooling: PoolingScheduleSchema.optional(),
  rope: RopeExtensionSchema.optional(),
  maxNewTokens: z.int().min(1).max(8192).optional(),
  /** Greedy (temperature 0) or seeded sampling for this video, whatever the environment's default. */
  sampling: SamplingSchema.optional(),
  /** Tell the model when each frame was taken (see settings.timeAwarePrompt). */
  timeAwarePrompt: z.boolean().optional(),
});
export type Sidecar = z.infer<typeof SidecarSchema>;
export type SidecarInput = z.input<typeof SidecarSchema>;
