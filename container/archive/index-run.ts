/**
 * `longsight index s3://BUCKET[/PREFIX]`, read as its steps:
 *   target (a stack's outputs, or a local run's extraction configuration) → profile →
 *   survey (listing or inventory, existing jobs) → report | dry run | hand-off → summary.
 * Locally the hand-off runs here, in process, through the real extraction handler; deployed, the
 * stack's state machine runs it (a Distributed Map) and this process only starts and follows it.
 */
import { createWriteStream, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SFNClient } from '@aws-sdk/client-sfn';
import {
  ARCHIVE_OUTPUTS,
  ENV,
  extractionProfile,
  extractRuntimeConfigOf,
  ExtractRuntimeConfigSchema,
  GPU_INSTANCE_TYPES,
  jsonFromEnv,
  parseOrThrow,
  PROFILE_ID_PATTERN,
  resolveEnvironment,
  type ExtractRuntimeConfig,
} from '../../lib/contracts';
import { createLogger } from '../../lib/log';
import { createExtractHandler } from '../../lambda/extract-frames/handler';
import { CliError, EXIT } from '../cli/exit-codes';
import type { Connected } from '../cli/target-options';
import { getJobs } from '../local/job-queries';
import { StatusLine } from '../local/status-line';
import { predictCost, type CostPrediction } from './backfill-cost';
import { handOff, type HandOffOutcome } from './hand-off';
import { isVersioned, listInventory, listObjects, parseS3Uri, type ListedObject } from './listing';
import { formatDuration, formatProgress, formatSummary, plural, type BackfillSummary } from './progress';
import { archiveReport, formatReport } from './report';
import { backfillProgress, executionNameOf, readBackfillResults, startBackfill } from './stack-backfill';
import { selectForIndexing, surveyVideos, type Survey } from './survey';
import { longsightHome } from '../local/home';
import { callerDir } from '../cli/caller-dir';

export interface IndexOptions {
  /** s3://BUCKET[/PREFIX] */
  uri: string;
  /** The deployed stack's name, when the target is one (its environment's settings are read from cdk.json for --dry-run). */
  stack?: string;
  dryRun?: boolean;
  limit?: number;
  /** 'current' (default) or a profile id (p-<12 hex>). */
  profile?: string;
  /** s3://…/manifest.json of an S3 Inventory report, read instead of listing. */
  inventory?: string;
  report?: boolean;
  /** Local: extractions at once, and most started per second. */
  concurrency?: number;
  rate?: number;
  /** Local: wait for the queued jobs' answers. */
  wait?: boolean;
  /** Stack: follow this execution instead of starting one. */
  attach?: string;
  /** Stack: start and return without following. */
  detach?: boolean;
  /** --dry-run: the model package or config.json to price with, and the instance type. */
  model?: string;
  instanceType?: string;
  json?: boolean;
  /** Where the local hand-off's handler logs (default .cache/logs/index-<time>.log). */
  logFile?: string;
}

export interface IndexIo {
  print: (s: string) => void;
  /** Notices (stderr by default); the progress line itself goes to `err`. */
  note?: (s: string) => void;
  err?: NodeJS.WriteStream;
  /** Checked between steps and objects: true stops the run (Ctrl-C). */
  interrupted?: () => boolean;
  pollMs?: number;
}

/** A notice above the progress line. */
function say(io: IndexIo, status: StatusLine, text: string): void {
  status.done();
  if (io.note) io.note(text);
  else (io.err ?? process.stderr).write(`${text}\n`);
}

/**
 * Where the profile and the hand-off come from: a stack's outputs (and, when cdk.json here holds
 * the environment with the same profile, its extraction configuration), or a local one.
 */
type Side =
  | { kind: 'stack'; outputs: Record<string, string>; profile: string; config?: ExtractRuntimeConfig; configNote?: string }
  | { kind: 'local'; config: ExtractRuntimeConfig; profile: string };

/** The stack's environment from ./cdk.json (`Longsight-<env>`), if its profile is the deployed one. */
function deployedConfig(stack: string | undefined, profile: string): { config?: ExtractRuntimeConfig; note?: string } {
  const file = resolve(callerDir(), 'cdk.json');
  const envName = stack?.replace(/^Longsight-/, '');
  if (!envName || !existsSync(file)) return { note: "no cdk.json here to read the environment's settings from" };
  try {
    const config = extractRuntimeConfigOf(resolveEnvironment(JSON.parse(readFileSync(file, 'utf8')).context?.environments, envName));
    const local = extractionProfile(config).id;
    if (local !== profile) return { note: `cdk.json's "${envName}" environment is profile ${local}, the stack runs ${profile} (deploy, or price with \`longsight plan\`)` };
    return { config };
  } catch (e) {
    return { note: `cdk.json: ${(e as Error).message}` };
  }
}

function sideOf(t: Connected, o: IndexOptions): Side {
  if (t.outputs) {
    const profile = t.outputs[ARCHIVE_OUTPUTS.profile];
    if (!profile) throw new CliError(`${t.source} has no ${ARCHIVE_OUTPUTS.profile} output: deploy this version of Longsight to it first (npx cdk deploy)`);
    const d = o.dryRun ? deployedConfig(o.stack, profile) : {};
    return { kind: 'stack', outputs: t.outputs, profile, config: d.config, configNote: d.note };
  }
  let config = t.extractConfig;
  if (!config && process.env[ENV.extractConfig]) config = parseOrThrow(ExtractRuntimeConfigSchema, jsonFromEnv(process.env, ENV.extractConfig, ''), ENV.extractConfig);
  if (!config) {
    throw new CliError(
      `longsight index needs the extraction configuration the jobs are made with (their index profile): index a deployed stack (--stack NAME), ` +
        `a local run kept going with \`npm start -- --keep-running\`, or set ${ENV.extractConfig} to the extraction Lambda's configuration (JSON)`,
      EXIT.usage,
    );
  }
  return { kind: 'local', config, profile: extractionProfile(config).id };
}

/** The profile the command acts on: the deployment's, or (report only) another one named. */
function chosenProfile(o: IndexOptions, side: Side): string {
  const asked = o.profile ?? 'current';
  if (asked === 'current' || asked === side.profile) return side.profile;
  if (!PROFILE_ID_PATTERN.test(asked)) throw new CliError(`--profile must be "current" or a profile id (p- and 12 hex digits), got "${asked}"`, EXIT.usage);
  if (!o.report) {
    throw new CliError(
      `the deployment indexes under its current profile ${side.profile}, not ${asked}: a profile is the model id, inference settings and questions ` +
        `in the configuration (change them and deploy to index under a new one); --profile <id> works with --report`,
      EXIT.usage,
    );
  }
  return asked;
}

export async function runIndex(t: Connected, o: IndexOptions, io: IndexIo): Promise<number> {
  const err = io.err ?? process.stderr;
  const status = new StatusLine(err);
  const side = sideOf(t, o);
  if (o.attach) {
    if (side.kind !== 'stack') throw new CliError('--attach follows a deployed run: give --stack NAME', EXIT.usage);
    return followStackRun(t, side, o.attach, o, io, status);
  }
  let location;
  try {
    location = parseS3Uri(o.uri, 'a bucket to index');
  } catch (e) {
    throw new CliError((e as Error).message, EXIT.usage);
  }
  if (location.bucket !== t.resources.bucket) {
    throw new CliError(`s3://${location.bucket} is not the video bucket of ${t.source} (${t.resources.bucket}): the extraction reads that bucket and writes its frames there`, EXIT.usage);
  }
  const profile = chosenProfile(o, side);
  const survey = await surveyBucket(t, location.key, profile, o, status);
  status.done();
  if (o.report) {
    const price = side.kind === 'stack' && side.outputs[ARCHIVE_OUTPUTS.usdPerGpuHour] ? { usdPerGpuHour: Number(side.outputs[ARCHIVE_OUTPUTS.usdPerGpuHour]), jobsPerWorker: Number(side.outputs[ARCHIVE_OUTPUTS.jobsPerWorker] ?? 1) } : undefined;
    const rows = archiveReport(survey, location.key, price);
    io.print(o.json ? JSON.stringify({ profile, prefix: location.key, rows }) : formatReport(rows, { profile, prefix: location.key, priced: Boolean(price) }));
    return EXIT.ok;
  }
  const selection = selectForIndexing(survey, o.limit);
  const summary: BackfillSummary = {
    listed: survey.listed,
    videos: survey.videos.length,
    alreadyIndexed: selection.existing.length,
    deferred: selection.deferred,
    notVideos: Object.fromEntries(survey.notVideos),
    indexed: 0,
    skipped: [],
    failed: [],
  };
  if (o.dryRun) return dryRun(side, selection.toIndex.map((v) => v.object.key), summary, o, io);
  if (side.kind === 'stack') {
    // The map lists a prefix itself; the whole bucket is listed here (frames/ and index/ skipped, which
    // can hold millions of objects the map would iterate), as are --limit and inventory selections.
    const partial = Boolean(o.limit !== undefined || o.inventory || location.key === '');
    return startStackRun(t, side, { prefix: location.key, videos: partial ? selection.toIndex : undefined }, summary, o, io, status);
  }
  return localHandOff(t, side, selection.toIndex, summary, o, io, status);
}

async function surveyBucket(t: Connected, prefix: string, profile: string, o: IndexOptions, status: StatusLine): Promise<Survey> {
  const { s3, ddb } = t.clients;
  let pages: AsyncIterable<ListedObject[]>;
  if (o.inventory) {
    const manifest = parseS3Uri(o.inventory, 'an S3 Inventory manifest');
    pages = listInventory(s3, manifest, prefix);
  } else {
    pages = listObjects(s3, t.resources.bucket, prefix, await isVersioned(s3, t.resources.bucket));
  }
  return surveyVideos(pages, profile, (ids) => getJobs(ddb, t.resources.jobsTable, ids), (s) =>
    status.update(`listing s3://${t.resources.bucket}/${prefix}: ${plural(s.listed, 'object')}, ${plural(s.videos.length, 'video')}, ${s.videos.filter((v) => v.job).length} already indexed`),
  );
}

function dryRun(side: Side, keys: string[], summary: BackfillSummary, o: IndexOptions, io: IndexIo): number {
  const config = side.config;
  const instanceType = o.instanceType ?? (side.kind === 'stack' ? side.outputs[ARCHIVE_OUTPUTS.instanceType] : undefined) ?? 'g5.xlarge';
  if (!GPU_INSTANCE_TYPES[instanceType]) throw new CliError(`--instance-type: unknown type "${instanceType}" (known: ${Object.keys(GPU_INSTANCE_TYPES).join(', ')})`, EXIT.usage);
  let cost: CostPrediction | undefined;
  if (config) cost = predictCost({ jobs: keys.length, settings: extractionProfile(config).settings, questions: config.questions.length, instanceType, model: o.model });
  if (o.json) {
    io.print(JSON.stringify({ dryRun: true, profile: side.profile, toIndex: keys, ...summary, cost }));
    return EXIT.ok;
  }
  const lines = [
    `Dry run (index profile ${side.profile}): nothing was handed to the extraction.`,
    formatSummary(summary).split('\n')[0],
    `Would index ${plural(keys.length, 'video')}, skip ${summary.alreadyIndexed} indexed before${summary.deferred ? `, leave ${summary.deferred} for a later run (--limit)` : ''}:`,
    ...keys.slice(0, 20).map((k) => `  ${k}`),
    ...(keys.length > 20 ? [`  … and ${keys.length - 20} more`] : []),
  ];
  if (cost) lines.push(costLine(cost));
  else lines.push(`Cost: not predicted: ${side.kind === 'stack' ? side.configNote : ''}`);
  io.print(lines.join('\n'));
  return EXIT.ok;
}

function costLine(c: CostPrediction): string {
  const frames = `${plural(c.jobs, 'job')} × ${c.framesPerJob} frames = ${(c.jobs * c.framesPerJob).toLocaleString('en-US')} frames (a sidecar may change a video's count)`;
  if (c.doesNotFit) return `${frames}\nCost: a job does not fit on ${c.instanceType}; \`longsight plan\` fits it on ${c.doesNotFit.join(', ') || 'no listed type'}.`;
  return (
    `${frames}\n` +
    `Cost (longsight plan, ${c.instanceType} on demand, every answer at max new tokens): ${formatDuration(c.gpuSecondsPerJob!)} and $${c.usdPerJob!.toFixed(4)} a job → ` +
    `${c.totalGpuHours!.toFixed(2)} GPU hours, $${c.totalUsd!.toFixed(2)} in all`
  );
}

async function localHandOff(t: Connected, side: Extract<Side, { kind: 'local' }>, videos: Parameters<typeof handOff>[0], summary: BackfillSummary, o: IndexOptions, io: IndexIo, status: StatusLine): Promise<number> {
  if (videos.length === 0) {
    io.print(o.json ? JSON.stringify({ profile: side.profile, ...summary }) : `Nothing to index under profile ${side.profile}.\n${formatSummary(summary)}`);
    return EXIT.ok;
  }
  const logFile = o.logFile ?? join(longsightHome(), 'logs', `index-${new Date().toISOString().replace(/[:.]/g, '-')}.log`);
  mkdirSync(resolve(logFile, '..'), { recursive: true });
  const log = createWriteStream(logFile, { flags: 'a' });
  const handler = createExtractHandler({
    clients: t.clients,
    config: side.config,
    jobsTable: t.resources.jobsTable,
    queueUrl: t.resources.queueUrl,
    logger: createLogger({ service: 'longsight-index' }, (line) => log.write(`${line}\n`)),
  });
  say(io, status, `Indexing ${plural(videos.length, 'video')} under profile ${side.profile} (${summary.alreadyIndexed} indexed before; log ${logFile})`);
  const started = Date.now();
  const counts = { done: 0, indexed: 0, skipped: 0, failed: 0 };
  const render = () => status.update(formatProgress({ ...counts, total: videos.length, elapsedMs: Date.now() - started }));
  render();
  const outcomes = await handOff(videos, {
    handler,
    concurrency: o.concurrency,
    ratePerSecond: o.rate,
    stopped: io.interrupted,
    onResult: (r) => {
      counts.done++;
      counts[r.result]++;
      render();
    },
  });
  status.done();
  log.end();
  addOutcomes(summary, outcomes);
  const stopped = outcomes.length < videos.length;
  io.print(o.json ? JSON.stringify({ profile: side.profile, ...summary }) : `${stopped ? `Stopped after ${outcomes.length} of ${videos.length} videos. ` : ''}${formatSummary(summary)}`);
  if (o.wait && !stopped) await waitForAnswers(t, outcomes.filter((x) => x.result === 'indexed').map((x) => x.jobId), io, status);
  return summary.failed.length || stopped ? EXIT.failed : EXIT.ok;
}

function addOutcomes(summary: BackfillSummary, outcomes: readonly HandOffOutcome[]): void {
  for (const r of outcomes) {
    if (r.result === 'indexed') summary.indexed++;
    else if (r.result === 'skipped') summary.skipped.push({ key: r.key, why: r.why });
    else summary.failed.push({ key: r.key, reason: r.reason });
  }
}

/** Local --wait: until every job this run queued is DONE or FAILED (the local run's workers answer them). */
async function waitForAnswers(t: Connected, jobIds: string[], io: IndexIo, status: StatusLine): Promise<void> {
  const finished = new Map<string, string>();
  while (finished.size < jobIds.length && !io.interrupted?.()) {
    const items = await getJobs(t.clients.ddb, t.resources.jobsTable, jobIds.filter((id) => !finished.has(id)));
    for (const [id, job] of items) if (job.status === 'DONE' || job.status === 'FAILED') finished.set(id, job.status);
    status.update(`answering: ${finished.size}/${jobIds.length} jobs finished`);
    if (finished.size < jobIds.length) await new Promise((r) => setTimeout(r, io.pollMs ?? 500));
  }
  status.done();
  const failed = [...finished.values()].filter((s) => s === 'FAILED').length;
  say(io, status, `Answered: ${finished.size - failed} jobs DONE, ${failed} FAILED${finished.size < jobIds.length ? ` (${jobIds.length - finished.size} unfinished)` : ''}.`);
}

async function startStackRun(t: Connected, side: Extract<Side, { kind: 'stack' }>, what: { prefix: string; videos?: Parameters<typeof handOff>[0] }, summary: BackfillSummary, o: IndexOptions, io: IndexIo, status: StatusLine): Promise<number> {
  const stateMachineArn = side.outputs[ARCHIVE_OUTPUTS.stateMachine];
  const resultsBucket = side.outputs[ARCHIVE_OUTPUTS.resultsBucket];
  if (!stateMachineArn || !resultsBucket) throw new CliError(`${t.source} has no backfill state machine (outputs ${ARCHIVE_OUTPUTS.stateMachine}, ${ARCHIVE_OUTPUTS.resultsBucket}): deploy this version of Longsight first`);
  if (what.videos && what.videos.length === 0) {
    io.print(`Nothing to index: ${formatSummary(summary)}`);
    return EXIT.ok;
  }
  const sfn = new SFNClient({});
  try {
    const run = await startBackfill({ sfn, s3: t.clients.s3 }, { stateMachineArn, resultsBucket, prefix: what.prefix, videos: what.videos });
    say(
      io,
      status,
      `Started backfill ${run.name} on ${t.source} (${what.videos ? `${plural(what.videos.length, 'selected video')}` : `every object under s3://${t.resources.bucket}/${what.prefix}`}); it runs on without this command.\n` +
        `  execution: ${run.executionArn}\n  follow again: longsight index --stack <name> --attach ${run.executionArn}`
    );
    if (o.detach) return EXIT.ok;
    return await follow(sfn, t, side, run.executionArn, summary, o, io, status);
  } finally {
    sfn.destroy();
  }
}

async function followStackRun(t: Connected, side: Extract<Side, { kind: 'stack' }>, executionArn: string, o: IndexOptions, io: IndexIo, status: StatusLine): Promise<number> {
  const sfn = new SFNClient({});
  try {
    const summary: BackfillSummary = { listed: 0, videos: 0, alreadyIndexed: 0, deferred: 0, notVideos: {}, indexed: 0, skipped: [], failed: [] };
    return await follow(sfn, t, side, executionArn, summary, o, io, status);
  } finally {
    sfn.destroy();
  }
}

/** Progress from the map run until the execution ends (or Ctrl-C detaches), then the summary from its results. */
async function follow(sfn: SFNClient, t: Connected, side: Extract<Side, { kind: 'stack' }>, executionArn: string, summary: BackfillSummary, o: IndexOptions, io: IndexIo, status: StatusLine): Promise<number> {
  const started = Date.now();
  let p = await backfillProgress(sfn, executionArn);
  while (p.status === 'RUNNING') {
    if (io.interrupted?.()) {
      status.done();
      say(io, status, `Detached: the backfill runs on. Follow it again with: longsight index --stack <name> --attach ${executionArn}`);
      return EXIT.ok;
    }
    const done = p.succeeded + p.failed;
    status.update(`${formatProgress({ done, total: p.total, indexed: p.succeeded, skipped: 0, failed: p.failed, elapsedMs: Date.now() - started }, 'objects')} (map run: ${p.running} running, ${p.pending} pending)`);
    await new Promise((r) => setTimeout(r, io.pollMs ?? 5000));
    p = await backfillProgress(sfn, executionArn);
  }
  status.done();
  const outcomes = await readBackfillResults(t.clients.s3, side.outputs[ARCHIVE_OUTPUTS.resultsBucket], executionNameOf(executionArn));
  addOutcomes(summary, outcomes);
  // A listing run saw every object: what it reports as not a video is the not-videos count.
  const ignored = summary.skipped.filter((s) => /not a video/.test(s.why));
  if (ignored.length) {
    summary.skipped = summary.skipped.filter((s) => !/not a video/.test(s.why));
    summary.notVideos['not a video suffix (or under frames/ or index/)'] = (summary.notVideos['not a video suffix (or under frames/ or index/)'] ?? 0) + ignored.length;
  }
  summary.listed = Math.max(summary.listed, p.total);
  const head = `Backfill ${executionNameOf(executionArn)} ${p.status}${p.error ? ` (${p.error})` : ''}: ${p.total} objects, ${p.succeeded} handled, ${p.failed} failed after retries.`;
  io.print(o.json ? JSON.stringify({ profile: side.profile, status: p.status, ...summary }) : `${head}\n${formatSummary(summary)}`);
  return p.status === 'SUCCEEDED' && summary.failed.length === 0 ? EXIT.ok : EXIT.failed;
}
