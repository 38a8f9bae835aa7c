/**
 * `longsight plan --model <package dir | config.json> --frames 256 [--pooling K,s_h,s_l]
 *   [--chunk C] [--dtype fp16] [--question-tokens N] [--max-new-tokens N] [--rope-mode M]
 *   [--visual-window L_v] [--vision-batch B] [--target gpu|cpu] [--questions Q] [--answer-tokens N]
 *   [--video-minutes M] [--price TYPE=USD]... [--json]`
 * Options are validated once here with the contract schemas; the planning itself is pure.
 */
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { DEFAULT_SETTINGS, GPU_INSTANCE_TYPES, InferenceSettingsSchema, PoolingScheduleSchema, ROPE_MODES, RopeExtensionSchema } from '../../lib/contracts';
import { formatPlan } from './format';
import { planJob, type JobPlan } from './job-plan';
import { loadPlanModel, PlanInputError } from './model-dims';

export const PLAN_USAGE =
  'usage: longsight plan --model <package dir | config.json> [--frames N] [--pooling K,s_h,s_l] [--chunk C] [--dtype fp16|fp32] ' +
  '[--question-tokens N] [--max-new-tokens N] [--rope-mode visual-yarn|language-yarn|position-interpolation|off] [--visual-window L_v] ' +
  '[--vision-batch B] [--target gpu|cpu] [--questions Q] [--answer-tokens N] [--video-minutes M] [--price TYPE=USD]... [--json]';

const d = DEFAULT_SETTINGS;
/** `longsight plan --help`: the usage line, then each option with its default. */
export const PLAN_HELP = [
  PLAN_USAGE,
  '',
  'Plans one job before running it: the visual tokens after progressive pooling, the RoPE scale s = L_test / L_v,',
  'GPU (or CPU) memory (weights, KV cache, activations), the bytes that cross the runtime boundary (the transfer',
  'ledger), and the time and cost per video on every GPU instance type the job fits on.',
  '',
  'Options:',
  '  --model <dir | config.json>  a converted package (`longsight convert`) or a Hugging Face config.json (no weights needed)',
  `  --frames N                   frames sampled from the video (default ${d.frames})`,
  `  --pooling K,s_h,s_l          progressive pooling schedule (default ${d.pooling.groupSize},${d.pooling.strideHigh},${d.pooling.strideLow}; the stock model is 1,2,2)`,
  `  --chunk C                    prefill chunk in tokens (default ${d.prefillChunk})`,
  "  --dtype fp16|fp32            weight and activation type (default: the package's, else fp16)",
  '  --question-tokens N          tokens per question (default 32)',
  `  --max-new-tokens N           answer length limit (default ${d.maxNewTokens})`,
  `  --rope-mode M                ${ROPE_MODES.join(' | ')} (default ${d.rope.mode})`,
  `  --visual-window L_v          visual context window in tokens (default ${d.rope.visualContextWindow}; 0 disables the extension)`,
  '  --vision-batch B             frames per vision-encoder batch (default 8)',
  '  --target gpu|cpu             where it runs (default gpu)',
  '  --questions Q                questions asked of each video; they share its prefill (default 1)',
  '  --answer-tokens N            tokens per answer for the time and cost (default: max new tokens, an upper bound)',
  '  --video-minutes M            video length, for the cost per video-hour (default 60)',
  '  --price TYPE=USD             USD per instance-hour instead of the built-in on-demand price (repeatable)',
  '  --json                       the plan as JSON',
  '',
  'Example: longsight plan --model container/plan/models/llava-onevision-qwen2-7b-ov.config.json --frames 256',
].join('\n');

const intArg = (name: string) =>
  z
    .string()
    .regex(/^\d+$/, `--${name} must be a whole number`)
    .transform((s) => Number(s));

const PlanArgsSchema = z.object({
  model: z.string({ error: () => '--model is required (a converted package directory or a Hugging Face config.json)' }).min(1),
  frames: intArg('frames').pipe(InferenceSettingsSchema.shape.frames.unwrap()).optional(),
  pooling: z
    .string()
    .regex(/^\d+,\d+,\d+$/, '--pooling must be K,s_h,s_l (e.g. 4,2,8)')
    .transform((s) => {
      const [groupSize, strideHigh, strideLow] = s.split(',').map(Number);
      return { groupSize, strideHigh, strideLow };
    })
    .pipe(PoolingScheduleSchema)
    .optional(),
  chunk: intArg('chunk').pipe(InferenceSettingsSchema.shape.prefillChunk.unwrap()).optional(),
  dtype: z.enum(['fp16', 'fp32'], { error: () => '--dtype must be fp16 or fp32' }).optional(),
  'question-tokens': intArg('question-tokens').optional(),
  'max-new-tokens': intArg('max-new-tokens').pipe(z.int().min(0).max(8192)).optional(),
  'rope-mode': z.enum(ROPE_MODES, { error: () => `--rope-mode must be one of ${ROPE_MODES.join(', ')}` }).optional(),
  'visual-window': intArg('visual-window').optional(),
  'vision-batch': intArg('vision-batch').pipe(z.int().min(1).max(1024)).optional(),
  target: z.enum(['gpu', 'cpu'], { error: () => '--target must be gpu or cpu' }).optional(),
  questions: intArg('questions').pipe(z.int().min(1).max(64)).optional(),
  'answer-tokens': intArg('answer-tokens').optional(),
  'video-minutes': z.string().regex(/^\d+(\.\d+)?$/, '--video-minutes must be a number').transform(Number).pipe(z.number().positive()).optional(),
  price: z
    .array(z.string().regex(/^[a-z0-9]+\.[a-z0-9]+=\d+(\.\d+)?$/, '--price must be TYPE=USD, e.g. g6e.xlarge=1.86'))
    .transform((list) => Object.fromEntries(list.map((p) => [p.split('=')[0], Number(p.split('=')[1])])))
    .refine((prices) => Object.keys(prices).every((t) => t in GPU_INSTANCE_TYPES), { message: `--price names an unknown instance type (known: ${Object.keys(GPU_INSTANCE_TYPES).join(', ')})` })
    .optional(),
  json: z.boolean().optional(),
});

/** Parses `plan` arguments (without the sub-command), plans, prints, and returns the plan. */
export function runPlanCommand(argv: string[], print: (text: string) => void = (t) => process.stdout.write(`${t}\n`)): JobPlan {
  let values: Record<string, unknown>;
  try {
    values = parseArgs({
      args: argv,
      options: {
        model: { type: 'string' },
        frames: { type: 'string' },
        pooling: { type: 'string' },
        chunk: { type: 'string' },
        dtype: { type: 'string' },
        'question-tokens': { type: 'string' },
        'max-new-tokens': { type: 'string' },
        'rope-mode': { type: 'string' },
        'visual-window': { type: 'string' },
        'vision-batch': { type: 'string' },
        target: { type: 'string' },
        questions: { type: 'string' },
        'answer-tokens': { type: 'string' },
        'video-minutes': { type: 'string' },
        price: { type: 'string', multiple: true },
        json: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    throw new PlanInputError(`${(err as Error).message}\n${PLAN_USAGE}`);
  }
  const parsed = PlanArgsSchema.safeParse(values);
  if (!parsed.success) {
    const messages = parsed.error.issues.map((i) => (i.message.startsWith('--') || i.path.length === 0 ? i.message : `--${i.path.join('.')}: ${i.message}`));
    throw new PlanInputError(`${messages.join('; ')}\n${PLAN_USAGE}`);
  }
  const a = parsed.data;
  const model = loadPlanModel(a.model);
  const rope = RopeExtensionSchema.parse({
    ...DEFAULT_SETTINGS.rope,
    ...(a['rope-mode'] ? { mode: a['rope-mode'] } : {}),
    ...(a['visual-window'] !== undefined ? { visualContextWindow: a['visual-window'] } : {}),
  });
  const plan = planJob({
    model,
    frames: a.frames ?? DEFAULT_SETTINGS.frames,
    pooling: a.pooling ?? DEFAULT_SETTINGS.pooling,
    chunk: a.chunk ?? DEFAULT_SETTINGS.prefillChunk,
    dtype: a.dtype ?? model.packageDtype ?? 'fp16',
    questionTokens: a['question-tokens'] ?? 32,
    maxNewTokens: a['max-new-tokens'] ?? DEFAULT_SETTINGS.maxNewTokens,
    rope,
    visionBatch: a['vision-batch'] ?? 8,
    target: a.target ?? 'gpu',
    questions: a.questions,
    answerTokens: a['answer-tokens'],
    videoSeconds: a['video-minutes'] !== undefined ? a['video-minutes'] * 60 : undefined,
    prices: a.price,
  });
  print(a.json ? JSON.stringify(plan, null, 2) : formatPlan(plan));
  return plan;
}
