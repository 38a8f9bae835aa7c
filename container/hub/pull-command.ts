/**
 * `longsight model pull <repo> [--revision R] [--out DIR] [--target cpu|cuda] [--remove-checkpoint]`:
 * the total size up front, a progress bar (bytes, speed, ETA) while downloading and converting
 * (on stderr; a plain line every few seconds when stderr is not a terminal), and the package's
 * path, alone, on stdout.
 */
import * as cliProgress from 'cli-progress';
import type { ConvertTarget } from '../convert/cli';
import { CliError, EXIT } from '../cli/exit-codes';
import { PullError } from './hub-files';
import { pullModel, type PullEvent, type PullOptions } from './pull';

export interface PullCommandOptions {
  revision?: string;
  out?: string;
  target?: ConvertTarget;
  removeCheckpoint?: boolean;
}

const gb = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : `${(n / 1e6).toFixed(1)} MB`);

/** Draws pull events: a bar on a terminal, else a line per file and at most one progress line per 5 s. */
export function pullProgress(stderr: NodeJS.WritableStream & { isTTY?: boolean }): { onEvent(e: PullEvent): void; stop(): void } {
  const tty = Boolean(stderr.isTTY);
  const bar = new cliProgress.SingleBar(
    { stream: stderr, format: '{phase} [{bar}] {percentage}% | {doneH}/{totalH} | {speed} | ETA {eta_formatted} | {detail}', hideCursor: true, fps: 5, etaBuffer: 50 },
    cliProgress.Presets.shades_classic,
  );
  let phase: 'download' | 'convert' | undefined;
  let lastLine = 0;
  let t0 = Date.now();
  let base = 0;
  const line = (s: string) => stderr.write(`${s}\n`);
  const show = (p: 'download' | 'convert', done: number, total: number, detail: string) => {
    if (phase !== p) {
      if (phase && tty) bar.stop();
      phase = p;
      t0 = Date.now();
      base = done;
      if (tty) bar.start(Math.max(1, total), done, {});
    }
    const secs = (Date.now() - t0) / 1000;
    const speed = secs > 0.5 ? `${((done - base) / 1e6 / secs).toFixed(1)} MB/s` : '…';
    if (tty) {
      bar.setTotal(Math.max(1, total));
      bar.update(done, { phase: p === 'download' ? 'downloading' : 'converting ', doneH: gb(done), totalH: gb(total), speed, detail });
    } else if (Date.now() - lastLine > 5000) {
      lastLine = Date.now();
      line(`${p === 'download' ? 'downloading' : 'converting'} ${gb(done)} of ${gb(total)} (${Math.floor((done / Math.max(1, total)) * 100)}%, ${speed}) ${detail}`);
    }
  };
  return {
    onEvent(e) {
      if (e.kind === 'resolved') {
        const left = e.totalBytes - e.presentBytes;
        line(`commit ${e.commit.slice(0, 12)}: ${e.files} files, ${gb(e.totalBytes)}${e.presentBytes ? ` (${gb(e.presentBytes)} already downloaded, ${gb(left)} to go)` : ' to download'} → ${e.checkpointDir}`);
      } else if (e.kind === 'download') show('download', e.done, e.total, e.file);
      else if (e.kind === 'file' && !tty) line(`  ${e.file}: ${e.how === 'present' ? 'already here, verified' : e.how}`);
      else if (e.kind === 'convert') show('convert', e.progress.done, e.progress.total, `${e.progress.stage} ${e.progress.detail ?? ''}`.trim());
    },
    stop() {
      if (phase && tty) bar.stop();
    },
  };
}

export async function modelPullCommand(repo: string, o: PullCommandOptions, print: (s: string) => void, io: { stderr?: NodeJS.WritableStream & { isTTY?: boolean }; pull?: Partial<PullOptions> } = {}): Promise<number> {
  const stderr = io.stderr ?? process.stderr;
  const progress = pullProgress(stderr);
  const t0 = Date.now();
  try {
    stderr.write(`Pulling ${repo}@${o.revision ?? 'main'} for the ${o.target ?? 'cpu'} (${(o.target ?? 'cpu') === 'cuda' ? 'fp16' : 'fp32'} package)…\n`);
    const r = await pullModel({ repo, revision: o.revision, out: o.out, target: o.target, removeCheckpoint: o.removeCheckpoint, onEvent: progress.onEvent, ...io.pull });
    progress.stop();
    const secs = ((Date.now() - t0) / 1000).toFixed(1);
    if (r.upToDate) stderr.write(`Already pulled: ${repo}@${r.commit.slice(0, 12)} for ${o.target ?? 'cpu'} is in ${r.packageDir} (nothing downloaded).\n`);
    else stderr.write(`Pulled ${repo}@${r.commit.slice(0, 12)}: ${gb(r.fetchedBytes)} downloaded, checkpoint ${gb(r.checkpointBytes)}${o.removeCheckpoint ? ' (removed)' : ` kept in ${r.checkpointDir}`}, converted to ${r.manifest.dtype} in ${secs} s.\n`);
    if ((o.target ?? 'cpu') === 'cpu') stderr.write(`Use it: longsight run --model ${r.packageDir}   (plain \`longsight run\` now uses it too: the last pulled CPU model is the default)\n`);
    else stderr.write(`For the GPU workers: aws s3 sync ${r.packageDir} s3://<your-model-bucket>/<prefix>/ (the environment's model.artifactUri); \`longsight plan --model ${r.packageDir}\` plans it\n`);
    print(r.packageDir);
    return EXIT.ok;
  } catch (e) {
    progress.stop();
    if (e instanceof PullError) throw new CliError(`model pull: ${e.message}`, /not a Hub model repository name/.test(e.message) ? EXIT.usage : /not found on/.test(e.message) ? EXIT.notFound : EXIT.failed);
    throw e;
  }
}
