/**
 * `longsight eval` (a benchmark through the pipeline, a sweep of settings, scores, table, plots)
 * and `longsight eval score` (re-scores saved responses). The work is in container/eval/.
 */
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { PAPER_POOLING, RopeExtensionSchema } from '../../../lib/contracts';
import { BENCHMARK_DEFINITIONS, BENCHMARKS, DatasetError, type BenchmarkName } from '../../eval/benchmarks';
import { expandGrid, GridError, parseFramesList, parsePoolingList, parseRopeList, type EvalSetting } from '../../eval/grid';
import { writePlots } from '../../eval/plots';
import { formatReport, markdownReport, reportSettings, type MemoryPlanner } from '../../eval/report';
import { defaultResultsFile, reportStem, runEval } from '../../eval/run';
import { parsePredictions, scorePredictions, selectPredictions } from '../../eval/score';
import { connectStack, startLocalTarget, type EvalTarget } from '../../eval/target';
import { resolveDefaultModel, TEST_MODEL_NOTICE } from '../../local/model';
import { loadPlanModel, type PlanModel } from '../../plan/model-dims';
import { planMemory } from '../../plan/memory';
import { CliError, EXIT } from '../exit-codes';
import { longsightHome } from '../../local/home';
import { callerDir } from '../caller-dir';

const whole = (name: string, min: number, max: number) => (v: string) => {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}`);
  return n;
};
const asList = <T>(parse: (v: string) => T) => (v: string) => {
  try {
    return parse(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
};

interface EvalOptions {
  benchmark: BenchmarkName;
  data: string;
  frames: number[];
  rope?: EvalSetting['rope'][];
  pooling?: EvalSetting['pooling'][];
  timeAware?: boolean;
  results?: string;
  limit?: number;
  model?: string;
  workers: number;
  stack?: string;
  region?: string;
  timeout?: number;
  json?: boolean;
  logFile?: string;
}

/** The planner's peak memory for a setting: on the GPU for an fp16 package (or a config.json), in process RSS for an fp32 one. */
function memoryPlanner(model: PlanModel | undefined, maxNewTokens: number): MemoryPlanner | undefined {
  if (!model) return undefined;
  const dtype = model.packageDtype ?? 'fp16';
  const target = dtype === 'fp16' ? 'gpu' : 'cpu';
  return (s) => {
    const plan = planMemory({ model, frames: s.frames, pooling: s.pooling ?? PAPER_POOLING, chunk: 2048, dtype, maxNewTokens, rope: RopeExtensionSchema.parse({ mode: s.rope ?? 'visual-yarn' }), target });
    return { peakBytes: plan.chosen.budget.peak, target: `${target}, ${dtype}` };
  };
}

async function evalAction(o: EvalOptions, print: (s: string) => void): Promise<number> {
  const from = (p: string) => resolve(callerDir(), p);
  const bench = BENCHMARK_DEFINITIONS[o.benchmark];
  const settings = expandGrid(o.frames, o.rope ?? [], o.pooling ?? [], Boolean(o.timeAware));
  const results = from(o.results ?? defaultResultsFile(o.benchmark, '.'));
  const cacheDir = longsightHome();
  // Locally the model is known up front (the planner's memory column needs it even when every answer is already in the results file).
  const model = o.stack ? undefined : await resolveDefaultModel({ model: o.model ? from(o.model) : undefined });
  const planModel: PlanModel | undefined = model ? loadPlanModel(model.dir) : o.model ? loadPlanModel(from(o.model)) : undefined;
  const target = async (): Promise<EvalTarget> => {
    if (!model) return connectStack(o.stack!, o.region);
    process.stderr.write(`${model.isTestModel ? TEST_MODEL_NOTICE : `Model: ${model.manifest.modelId} (${model.dir})`}\n`);
    mkdirSync(join(cacheDir, 'logs'), { recursive: true });
    const logFile = o.logFile ? from(o.logFile) : join(cacheDir, 'logs', `eval-${new Date().toISOString().replace(/[:.]/g, '-')}.log`);
    return startLocalTarget({ model, workers: o.workers, frames: settings[0].frames, cacheDir, logFile });
  };
  const run = await runEval({
    benchmark: o.benchmark,
    data: from(o.data),
    settings,
    results,
    limit: o.limit,
    target,
    window: o.stack ? 64 : o.workers + 2,
    timeoutSeconds: o.timeout,
    err: process.stderr,
  });
  const reports = reportSettings(bench, run.rows, settings, memoryPlanner(planModel, bench.maxNewTokens));
  const stem = reportStem(results);
  const table = `${stem}.md`;
  writeFileSync(table, markdownReport(bench, reports, { results, model: planModel?.id, when: new Date().toISOString() }));
  const plots = settings.length > 1 ? await writePlots(stem, bench.overall === 'tasks' ? 'M-Avg' : 'accuracy', reports) : [];
  if (o.json) print(JSON.stringify({ benchmark: bench.name, results, table, plots, failed: run.failures, settings: reports }));
  else {
    print(formatReport(bench, reports));
    print(`\nResults: ${results} · table: ${table}${plots.length ? ` · plots: ${plots.filter((p) => p.endsWith('.png')).join(', ')}` : ''}`);
  }
  if (run.failures.length) {
    process.stderr.write(`${run.failures.length} question(s) got no answer (e.g. ${run.failures[0].id}: ${run.failures[0].reason}); the scores leave them out; a rerun asks them again.\n`);
    return EXIT.failed;
  }
  return EXIT.ok;
}

function scoreAction(o: { benchmark: BenchmarkName; predictions: string; setting?: string; json?: boolean }, print: (s: string) => void): number {
  const file = resolve(callerDir(), o.predictions);
  if (!existsSync(file)) throw new CliError(`no such predictions file: ${file}`, EXIT.notFound);
  const bench = BENCHMARK_DEFINITIONS[o.benchmark];
  let predictions;
  try {
    predictions = selectPredictions(parsePredictions(readFileSync(file, 'utf8'), file), file, o.setting);
  } catch (e) {
    throw new CliError((e as Error).message, EXIT.usage);
  }
  const score = scorePredictions(bench, predictions);
  if (o.json) {
    print(JSON.stringify({ benchmark: score.benchmark, score: score.score, tasks: score.tasks, items: score.items }));
    return EXIT.ok;
  }
  const lines = [`${bench.title}: ${bench.overall === 'tasks' ? 'M-Avg' : 'accuracy'} ${score.score.toFixed(1)} · ${score.correct}/${score.total} questions correct`];
  for (const [task, t] of Object.entries(score.tasks)) lines.push(`  ${task}  ${t.score.toFixed(1)}  (${t.correct}/${t.total})`);
  print(lines.join('\n'));
  return EXIT.ok;
}

/** `longsight eval …` and `longsight eval score …`. */
export function registerEval(program: Command, print: (s: string) => void, setExit: (code: number) => void): void {
  const benchmark = () => new Option('--benchmark <name>', 'videomme, mlvu or longvideobench (required)').choices(BENCHMARKS as unknown as string[]);
  const required = (o: Record<string, unknown>, ...names: string[]) => {
    const missing = names.filter((n) => o[n] === undefined);
    if (missing.length) throw new CliError(`missing ${missing.map((n) => `--${n}`).join(' and ')} (longsight eval --help)`, EXIT.usage);
  };
  // Options before `score` are eval's, after it score's (both have --benchmark): positional options,
  // which Commander needs on every command above `score`. The program has no options of its own, so
  // nothing else changes. None is mandatory on eval itself, so `eval score` needs no --data.
  program.enablePositionalOptions();
  const evalCmd = program
    .command('eval')
    .enablePositionalOptions()
    .description("Run a benchmark (VideoMME, MLVU dev, LongVideoBench val) through the pipeline and score it as lmms-eval does; several --frames/--rope/--pooling values run the sweep and write a table and plots")
    .addOption(benchmark())
    .option('--data <dir>', 'the benchmark as downloaded (annotations and videos; see the README) (required)')
    .option('--frames <list>', 'frames per video, e.g. 32 or 32,64,128,256', asList(parseFramesList), [32])
    .option('--rope <list>', 'RoPE modes, e.g. visual-yarn,off (default: the environment\'s, visual-yarn locally)', asList(parseRopeList))
    .option('--pooling <list>', 'pooling schedules K,s_h,s_l joined by ":", e.g. 4,2,8:1,2,2 (default: the environment\'s, 4,2,8 locally)', asList(parsePoolingList))
    .option('--time-aware', 'time-aware prompts (LLaVA-Video\'s time instruction before each question; off in the paper)')
    .option('--results <file>', 'the JSONL results file: appended job by job; a rerun skips what is in it (default eval-results/<benchmark>.jsonl)')
    .option('--limit <n>', 'only the first N questions', whole('--limit', 1, 10_000_000))
    .addOption(new Option('--model <dir>', 'the model package the local workers run (default: the tiny test checkpoint); with --stack, only for the planner\'s memory figures').env('LONGSIGHT_MODEL_DIR'))
    .option('-w, --workers <n>', 'local worker processes', whole('--workers', 1, 16), 1)
    .option('--stack <name>', 'run on a deployed stack instead (uploads to its bucket; its Lambda and GPU workers answer)')
    .option('--region <region>', 'AWS region of the stack')
    .option('--timeout <seconds>', 'give up after this long (what was answered stays in the results file)', whole('--timeout', 1, 30 * 24 * 3600))
    .option('--log-file <path>', 'where worker and Lambda logs go (local; default .cache/logs/eval-<time>.log)')
    .option('--json', 'print the summary as JSON')
    .action(async (o: EvalOptions) => {
      required(o as unknown as Record<string, unknown>, 'benchmark', 'data');
      try {
        setExit(await evalAction(o, print));
      } catch (e) {
        if (e instanceof DatasetError || e instanceof GridError) throw new CliError(e.message, EXIT.usage);
        throw e;
      }
    });

  evalCmd
    .command('score')
    .description('Re-score saved responses (JSONL of {id, response, answer, task?}) with the benchmark\'s extraction rules')
    .addOption(benchmark())
    .option('--predictions <file>', 'JSONL: one {id, response, answer, task?, choices?} per line (an eval results file works too) (required)')
    .option('--setting <name>', 'the setting to score when the file holds several (results of a sweep)')
    .option('--json', 'print {benchmark, score, tasks, items: [{id, extracted, correct}]}')
    .action((o: { benchmark: BenchmarkName; predictions: string; setting?: string; json?: boolean }) => {
      required(o, 'benchmark', 'predictions');
      setExit(scoreAction(o, print));
    });
}
