/**
 * `longsight` — the command line: `run` (the whole pipeline on this machine: `npm start`),
 * `model pull`, `convert`, `plan`, `frames` (what the model sees), `eval`, `index` / `query` (the
 * archive), and `jobs` / `status` / `answers` / `ask` / `requeue-dlq` against a deployed stack
 * (--stack NAME), explicit resources, a local run still going, or the local history of finished
 * runs. Works from any folder: relative paths are the caller's.
 * Exit codes: 0 ok · 1 failed (a job FAILED, an AWS error) · 2 usage · 3 not found.
 */
import { resolve } from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { PoolingScheduleSchema, ROPE_MODES, type PoolingSchedule, type RopeMode } from '../../lib/contracts';
import { LEGEND } from '../local/job-report';
import { lastPulledModel } from '../local/model';
import { runPipeline, UsageError } from '../local/pipeline';
import { callerDir } from './caller-dir';
import { answersCommand } from './commands/answers';
import { registerFramesCommand } from './commands/frames';
import { askCommand } from './commands/ask';
import { registerEval } from './commands/eval';
import { registerIndexCommand } from './commands/index-bucket';
import { registerQueryCommand } from './commands/query';
import { jobsCommand } from './commands/jobs';
import { requeueDlqCommand } from './commands/requeue-dlq';
import { statusCommand } from './commands/status';
import { CliError, EXIT } from './exit-codes';
import { addTargetOptions } from './target-options';

const int = (name: string, min: number, max: number) => (v: string) => {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}`);
  return n;
};

const pooling = (v: string): PoolingSchedule => {
  const m = /^(\d+),(\d+),(\d+)$/.exec(v);
  if (!m) throw new InvalidArgumentError('expected K,s_h,s_l (e.g. 4,2,8; the stock model is 1,2,2)');
  const r = PoolingScheduleSchema.safeParse({ groupSize: Number(m[1]), strideHigh: Number(m[2]), strideLow: Number(m[3]) });
  if (!r.success) throw new InvalidArgumentError(r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  return r.data;
};

const collect = (v: string, prev: string[]) => [...prev, v];

export function buildProgram(print: (s: string) => void, setExit: (code: number) => void, output?: { writeOut(s: string): void; writeErr(s: string): void }): Command {
  const program = new Command('longsight')
    .description('Answers questions about long videos: LLaVA-OneVision with visual context window extension and progressive pooling.')
    .showHelpAfterError('(add --help for usage)')
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  longsight run                              the whole pipeline here on a generated sample video (tiny test model)',
        '  longsight model pull llava-hf/llava-onevision-qwen2-0.5b-ov-hf    download + convert a real model (then `run` uses it)',
        '  longsight run talk.mp4 ./clips -r -q "Who speaks?"',
        '  longsight jobs                             jobs of the local runs (or --stack NAME: of a deployment)',
        '  longsight frames talk.mp4 --frames 8 --out seen   what the model sees (frames, timestamps, pixel_values.npy)',
        '  longsight plan --model ./models/llava-7b --frames 256',
        '  longsight status j-… --stack Longsight-prod',
        '  longsight <command> --help                 the options of one command',
        '',
        'Exit codes: 0 ok · 1 failed (a job FAILED, an AWS error) · 2 usage error · 3 not found',
      ].join('\n'),
    )
    .exitOverride();
  // Before the sub-commands: they copy the output settings when created.
  if (output) program.configureOutput(output);

  program
    .command('run')
    .description('Run the whole pipeline on this machine: embedded S3/SQS/DynamoDB, the extraction Lambda, the worker(s); prints each answer as it arrives')
    .argument('[videos...]', 'video files (.mp4 .mov .mkv .webm .avi .m4v .ts …) and folders of them; none: a generated sample video')
    .option('-r, --recursive', 'search the folders given for videos in their subfolders too')
    .addOption(new Option('--model <dir>', 'a converted model package (`longsight model pull` / `convert`); default: the last CPU `model pull`, else the tiny test checkpoint (meaningless answers)').env('LONGSIGHT_MODEL_DIR'))
    .addOption(new Option('-q, --question <text>', 'a question to ask about every video (repeatable)').argParser(collect).default([], '"Describe this video in detail."'))
    .option('-w, --workers <n>', 'worker processes', int('--workers', 0, 16), 1)
    .option('-f, --frames <n>', 'frames sampled per video', int('--frames', 1, 1024), 16)
    .option('--max-new-tokens <n>', 'answer length limit in tokens (default 256; 32 with the tiny test model)', int('--max-new-tokens', 1, 8192))
    .option('--pooling <K,s_h,s_l>', 'progressive pooling schedule (default 4,2,8, the paper\'s)', pooling)
    .addOption(new Option('--rope <mode>', 'RoPE extension (default visual-yarn, the paper\'s)').choices(ROPE_MODES as unknown as string[]))
    .option('--stack <name>', 'upload to a deployed stack instead (its Lambda and GPU workers do the rest; add --workers N to also run local workers)')
    .option('--endpoint <url>', 'use an existing S3/SQS/DynamoDB endpoint (LocalStack) instead of the embedded servers')
    .option('--region <region>', 'AWS region')
    .option('--keep-running', 'keep the servers and workers up after the videos are answered, for `longsight ask/status/answers` from another terminal')
    .option('--timeout <seconds>', 'give up after this long', int('--timeout', 1, 7 * 24 * 3600))
    .option('--json', 'one JSON object per finished job on stdout, nothing else (with npm: `npm start --silent -- --json`)')
    .option('--log-file <path>', 'where worker and Lambda logs go (default <home>/logs/run-<time>.log)')
    .addHelpText('after', `\nIn each finished job: ${LEGEND}`)
    .action(async (videos: string[], o: Record<string, unknown>, cmd: Command) => {
      const workersGiven = cmd.getOptionValueSource('workers') === 'cli';
      const from = (p: string) => resolve(callerDir(), p);
      const r = await runPipeline({
        videos: videos.map(from),
        recursive: Boolean(o.recursive),
        model: o.model ? from(o.model as string) : lastPulledModel(),
        questions: o.question as string[],
        workers: o.stack && !workersGiven ? 0 : (o.workers as number),
        frames: o.frames as number,
        maxNewTokens: o.maxNewTokens as number | undefined,
        pooling: o.pooling as PoolingSchedule | undefined,
        rope: o.rope as RopeMode | undefined,
        stack: o.stack as string | undefined,
        endpoint: o.endpoint as string | undefined,
        region: o.region as string | undefined,
        keepRunning: Boolean(o.keepRunning),
        timeoutSeconds: o.timeout as number | undefined,
        json: Boolean(o.json),
        logFile: o.logFile ? from(o.logFile as string) : undefined,
      });
      setExit(r.exitCode);
    });

  program
    .command('convert')
    .description('Convert a Hugging Face llava-onevision-qwen2-*-ov-hf checkpoint into a Longsight ONNX model package')
    .usage('<checkpoint-dir> <out-dir> [--dtype fp32|fp16]')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[args...]')
    .action(async (args: string[]) => {
      const { runConvertCommand } = await import('../convert/cli');
      try {
        await runConvertCommand(args);
      } catch (e) {
        if (/\(outputHelp\)|helpDisplayed/.test((e as Error).message)) return;
        throw new CliError((e as Error).message, /longsight convert: /.test((e as Error).message) ? EXIT.usage : EXIT.failed);
      }
    });

  program
    .command('plan')
    .description('Plan memory and sequence length for a job (frames, pooling, RoPE extension) before running it')
    .usage('--model <package dir | config.json> [--frames N] [--pooling K,s_h,s_l] … (longsight plan --help)')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[args...]')
    .action(async (args: string[]) => {
      const { runPlanCommand, PLAN_HELP } = await import('../plan/command');
      if (args.includes('--help') || args.includes('-h')) {
        print(PLAN_HELP);
        return;
      }
      try {
        runPlanCommand(args);
      } catch (e) {
        throw new CliError((e as Error).message, (e as Error).name === 'PlanInputError' ? EXIT.usage : EXIT.failed);
      }
    });

  registerFramesCommand(program, print, setExit);
  registerEval(program, print, setExit);

  program
    .command('model')
    .description('Get a real model: `longsight model pull <hub repo>` downloads a LLaVA-OneVision checkpoint and converts it')
    .command('pull')
    .description('Download a LLaVA-OneVision checkpoint from the Hugging Face Hub (HF_ENDPOINT, HF_TOKEN), verify it, convert it; prints the --model path')
    .argument('<repo>', 'a Hub model repo, e.g. llava-hf/llava-onevision-qwen2-0.5b-ov-hf (or -7b-ov-hf)')
    .option('--revision <rev>', 'branch, tag or commit', 'main')
    .option('--out <dir>', 'where the converted package goes (default <home>/models/<org>--<name>-<target>)')
    .addOption(new Option('--target <ep>', 'where it will run: cpu → fp32 package, cuda → fp16 (the GPU workers need fp16)').choices(['cpu', 'cuda']).default('cpu'))
    .option('--remove-checkpoint', 'delete the downloaded checkpoint once converted (saves its size on disk; a later pull downloads it again)')
    .action(async (repo: string, o: Record<string, unknown>) => {
      const { modelPullCommand } = await import('../hub/pull-command');
      // Progress goes where the CLI's errors go (stderr, or the caller's sink): stdout gets the package path only.
      const stderr = output ? { write: (s: string) => (output.writeErr(s), true), isTTY: false } : process.stderr;
      setExit(await modelPullCommand(repo, { revision: o.revision as string, out: o.out ? resolve(callerDir(), o.out as string) : undefined, target: o.target as 'cpu' | 'cuda', removeCheckpoint: Boolean(o.removeCheckpoint) }, print, { stderr: stderr as NodeJS.WritableStream & { isTTY?: boolean } }));
    });

  addTargetOptions(
    program
      .command('jobs')
      .description('List jobs, newest first (indexes byStatus / byVideo): of a deployment, a local run going on, or the local history of finished runs')
      .option('--status <status>', 'only jobs in this status: QUEUED, RUNNING, DONE, FAILED')
      .option('--video <key>', 'only the jobs of one video: its key in the bucket, or s3://bucket/key')
      .option('--since <time>', 'only jobs updated (created, with --video) since: 2026-05-01, 2026-05-01T12:00Z, or 30m, 2h, 7d back')
      .option('--limit <n>', 'at most this many (default 50)', int('--limit', 1, 100_000))
      .option('--json', 'one JSON object (the job item) per line'),
  ).action(async (o: Record<string, unknown>) => setExit(await jobsCommand(o, print)));

  addTargetOptions(
    program
      .command('status')
      .description("Show a job's status, reason, attempts, end-to-end and stage times, frames, settings, progress and cost")
      .argument('<jobId>', 'a job id (j-…)')
      .option('--json', 'the job item as JSON')
      .addHelpText('after', `\n${LEGEND}`),
  ).action(async (jobId: string, o: Record<string, unknown>) => setExit(await statusCommand(jobId, o, print)));

  addTargetOptions(
    program
      .command('answers')
      .description("Print a job's answers, or every answer about one video")
      .argument('<jobId|key>', 'a job id, a video key in the bucket, or s3://bucket/key')
      .option('--json', 'one JSON line per answer'),
  ).action(async (ref: string, o: Record<string, unknown>) => setExit(await answersCommand(ref, o, print)));

  addTargetOptions(
    program
      .command('ask')
      .description('Ask new questions about an already-extracted video (no new extraction): queues a job that reuses its frames')
      .argument('<jobId>', 'the job whose frames to use')
      .argument('<question...>', 'one or more questions (quote each)')
      .option('--max-new-tokens <n>', 'answer length limit in tokens', int('--max-new-tokens', 1, 8192))
      .option('--again', 'queue a new run even if the same questions were asked before')
      .option('--wait', 'wait for the answers and print them')
      .option('--timeout <seconds>', 'with --wait: give up after this long (default 600)', int('--timeout', 1, 86400))
      .option('--json', 'JSON output'),
  ).action(async (jobId: string, questions: string[], o: Record<string, unknown>) => setExit(await askCommand(jobId, questions, o, print)));

  addTargetOptions(
    program
      .command('requeue-dlq')
      .description('Move dead-lettered jobs back to the job queue after a fix (their jobs become QUEUED again)')
      .option('--max <n>', 'move at most this many messages', int('--max', 1, 1_000_000))
      .option('--dry-run', 'list what is in the DLQ, move nothing')
      .option('--json', 'JSON output'),
  ).action(async (o: Record<string, unknown>) => setExit(await requeueDlqCommand(o, print)));

  registerIndexCommand(program, print, setExit);
  registerQueryCommand(program, print, setExit);

  return program;
}

/** Runs the CLI on `argv` (node-style: [node, script, ...args]); resolves with the exit code. */
export async function main(argv: string[] = process.argv, io: { out?: (s: string) => void; err?: (s: string) => void } = {}): Promise<number> {
  const out = io.out ?? ((s: string) => process.stdout.write(`${s}\n`));
  const err = io.err ?? ((s: string) => process.stderr.write(`${s}\n`));
  // The SDK's notice that its 2027 releases need Node 22 says nothing about this run (its own switch; child workers inherit it).
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  let exitCode: number = EXIT.ok;
  const program = buildProgram(
    out,
    (c) => (exitCode = c),
    io.out || io.err ? { writeOut: (s) => out(s.replace(/\n$/, '')), writeErr: (s) => err(s.replace(/\n$/, '')) } : undefined,
  );
  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end here too, with exit code 0.
      return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    const code = e instanceof CliError ? e.exitCode : e instanceof UsageError ? EXIT.usage : EXIT.failed;
    err(`longsight: ${(e as Error).message}`);
    if (process.env.LONGSIGHT_DEBUG) err(String((e as Error).stack));
    return code;
  }
}

if (require.main === module) {
  void main().then((code) => {
    process.exitCode = code;
    // Let stdout drain; anything still open (a stray socket) must not keep the command alive.
    setTimeout(() => process.exit(code), 100).unref();
  });
}
