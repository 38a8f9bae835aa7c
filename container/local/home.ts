/**
 * Where `longsight` keeps what outlives one command on this machine, whichever folder it is run
 * from: LONGSIGHT_HOME, else the `.cache/` folder of the installed package (the clone, for
 * `npm link` / `npm install -g .`, which link to it).
 *
 *   logs/run-<time>.log      each local run's worker and Lambda log
 *   runs/<pid>-<ms>.json     the endpoints of local runs still going (for status/jobs in another terminal)
 *   history/                 finished jobs and answers of local runs (a DynamoDB-compatible store on disk)
 *   models/<org>--<name>-<target>/   packages made by `longsight model pull`; default-model.json names the last one
 *   hub/<org>--<name>/<commit>/      the checkpoints it downloaded
 *   samples/                 the generated sample video
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/** The folder holding this package's package.json (the clone, or dist/'s parent when compiled). */
export function packageRoot(from = __dirname): string {
  for (let dir = from; ; ) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'longsight') return dir;
      } catch {
        // not ours: keep looking
      }
    }
    const up = dirname(dir);
    if (up === dir) return resolve(from, '..', '..');
    dir = up;
  }
}

export function longsightHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.LONGSIGHT_HOME ? resolve(env.LONGSIGHT_HOME) : join(packageRoot(), '.cache');
}

export const HOME_DIRS = {
  logs: 'logs',
  runs: 'runs',
  history: 'history',
  models: 'models',
  hub: 'hub',
  samples: 'samples',
} as const;

export function homePath(part: keyof typeof HOME_DIRS, env: NodeJS.ProcessEnv = process.env): string {
  return join(longsightHome(env), HOME_DIRS[part]);
}
