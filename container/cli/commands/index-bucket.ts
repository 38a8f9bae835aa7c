/**
 * `longsight index s3://BUCKET[/PREFIX]`: index what is already in a bucket (the backfill), under the
 * deployment's index profile; `--report` for the archive report. The work is container/archive/index-run.ts.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { runIndex, type IndexOptions } from '../../archive/index-run';
import type { TargetOptions } from '../../local/targets';
import { addTargetOptions, connect } from '../target-options';

const whole = (name: string, min: number, max: number) => (v: string) => {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}`);
  return n;
};

/** Notices go where the program's error output goes (stderr, or the caller's sink). */
export function noteTo(cmd: Command): (s: string) => void {
  return (s) => (cmd.configureOutput().writeErr ?? ((x: string) => process.stderr.write(x)))(`${s}\n`);
}

export function registerIndexCommand(program: Command, print: (s: string) => void, setExit: (code: number) => void): void {
  addTargetOptions(
    program
      .command('index')
      .description('Index the videos already in a bucket (prefix): each gets a job under the current index profile; a rerun skips what is indexed')
      .argument('[s3-uri]', 's3://BUCKET[/PREFIX] (the deployment\'s video bucket)')
      .option('--dry-run', 'print what would be indexed, the frames and the cost `longsight plan` predicts; hand nothing off')
      .option('--limit <n>', 'index at most this many videos (the rest on a later run)', whole('--limit', 1, 10_000_000))
      .option('--profile <id>', 'current: the deployment\'s profile; with --report, any profile id (p-…)', 'current')
      .option('--report', 'print the archive report (found, indexed, failed by reason, hours, GPU hours, cost, latency) per folder instead')
      .option('--inventory <s3-uri>', 'read the objects from an S3 Inventory report (its manifest.json, CSV format) instead of listing the bucket')
      .option('--concurrency <n>', 'local: extractions at once (default 2)', whole('--concurrency', 1, 64))
      .option('--rate <n>', 'local: most extractions started per second', whole('--rate', 1, 1000))
      .option('--wait', 'local: also wait until the queued jobs are answered')
      .option('--attach <execution-arn>', 'deployed: follow a backfill run started earlier')
      .option('--detach', 'deployed: start the run and return (it runs on)')
      .option('--model <dir|config.json>', '--dry-run: the model to price with (default: the 7B config in container/plan/models)')
      .addOption(new Option('--instance-type <type>', "--dry-run: the GPU instance type to price on (default: the stack's, else g5.xlarge)"))
      .option('--log-file <path>', "local: where the extraction handler's logs go (default .cache/logs/index-<time>.log)")
      .option('--json', 'the summary (or report) as JSON'),
  ).action(async (uri: string | undefined, o: Record<string, unknown>, cmd: Command) => {
    if (!uri && !o.attach) throw new InvalidArgumentError('give the bucket to index, s3://BUCKET[/PREFIX]');
    let interrupted = false;
    const onSigint = () => {
      interrupted = true;
    };
    process.on('SIGINT', onSigint);
    const t = await connect(o as TargetOptions);
    try {
      setExit(await runIndex(t, { ...(o as Omit<IndexOptions, 'uri'>), uri: uri ?? '', stack: o.stack as string | undefined }, { print, note: noteTo(cmd), interrupted: () => interrupted }));
    } finally {
      process.off('SIGINT', onSigint);
      t.close();
    }
  });
}
