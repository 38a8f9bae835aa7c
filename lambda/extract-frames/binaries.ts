/**
 * Where ffmpeg and ffprobe are, in this order:
 *  1. FFMPEG_PATH / FFPROBE_PATH (the deployed Lambda image sets them to its pinned build);
 *  2. a system ffmpeg/ffprobe on PATH, version 5 or newer (maintained releases; `.ci/run` installs
 *     Debian's);
 *  3. the static binaries shipped by the npm packages @ffmpeg-installer/ffmpeg (a 2018 build) and
 *     @ffprobe-installer/ffprobe, as a fallback that is announced (`notice`): they parse untrusted
 *     uploads with old code, and that ffprobe crashes on MPEG-TS.
 * The other ffprobe found (system or npm) is kept as `secondProber`: a probe killed by a signal is
 * retried with it.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, chmodSync, constants, statSync } from 'node:fs';
import { ENV } from '../../lib/contracts/runtime-env';

export interface MediaBinaries {
  ffmpeg: string;
  ffprobe: string;
  /** Another ffprobe build to retry a crashed probe with. */
  secondProber?: string;
  source?: 'env' | 'system' | 'npm';
  /** Set when the npm fallback is used: why, and how to get a maintained build. */
  notice?: string;
}

/** The oldest major version taken from PATH. */
export const MIN_SYSTEM_FFMPEG_MAJOR = 5;

const cache = new Map<string, MediaBinaries>();

export function resolveBinaries(env: NodeJS.ProcessEnv = process.env): MediaBinaries {
  if (env[ENV.ffmpegPath] && env[ENV.ffprobePath]) return { ffmpeg: env[ENV.ffmpegPath]!, ffprobe: env[ENV.ffprobePath]!, source: 'env' };
  const key = `${env.PATH ?? ''}\n${env[ENV.ffmpegPath] ?? ''}\n${env[ENV.ffprobePath] ?? ''}`;
  let found = cache.get(key);
  if (!found) {
    found = locate(env);
    cache.set(key, found);
  }
  return found;
}

function locate(env: NodeJS.ProcessEnv): MediaBinaries {
  const system = { ffmpeg: systemBinary('ffmpeg', env), ffprobe: systemBinary('ffprobe', env) };
  if (system.ffmpeg && system.ffprobe) {
    return { ffmpeg: env[ENV.ffmpegPath] || system.ffmpeg, ffprobe: env[ENV.ffprobePath] || system.ffprobe, secondProber: npmBinaries()?.ffprobe, source: 'system' };
  }
  // Required lazily: the deployed image does not carry the npm binaries and sets the env vars instead.
  const npm = npmBinaries();
  if (!npm) throw new Error(`no ffmpeg/ffprobe: set ${ENV.ffmpegPath} and ${ENV.ffprobePath}, or install ffmpeg ${MIN_SYSTEM_FFMPEG_MAJOR} or newer (e.g. apt-get install ffmpeg)`);
  return {
    ffmpeg: env[ENV.ffmpegPath] || npm.ffmpeg,
    ffprobe: env[ENV.ffprobePath] || npm.ffprobe,
    secondProber: system.ffprobe,
    source: 'npm',
    notice: `no system ffmpeg ${MIN_SYSTEM_FFMPEG_MAJOR}+ found on PATH: using the npm-shipped static builds (ffmpeg from 2018; its ffprobe crashes on MPEG-TS). Install a maintained ffmpeg (e.g. apt-get install ffmpeg) or set ${ENV.ffmpegPath}/${ENV.ffprobePath}.`,
  };
}

/** The npm packages' binaries, or undefined when they are not installed (another platform). */
function npmBinaries(): { ffmpeg: string; ffprobe: string } | undefined {
  try {
    return {
      ffmpeg: executable((require('@ffmpeg-installer/ffmpeg') as { path: string }).path),
      ffprobe: executable((require('@ffprobe-installer/ffprobe') as { path: string }).path),
    };
  } catch {
    return undefined;
  }
}

/** `name` on PATH when it runs and reports a major version >= MIN_SYSTEM_FFMPEG_MAJOR. */
function systemBinary(name: string, env: NodeJS.ProcessEnv): string | undefined {
  try {
    // Once per process: a synchronous call of a few milliseconds at first use.
    const out = execFileSync(name, ['-version'], { encoding: 'utf8', timeout: 10_000, env: { PATH: env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'ignore'] });
    const major = majorVersion(out);
    return major !== undefined && major >= MIN_SYSTEM_FFMPEG_MAJOR ? name : undefined;
  } catch {
    return undefined;
  }
}

/** "ffmpeg version 7.1.1-…" → 7; "ffmpeg version 5.1.9-0+deb12u1" → 5; a git build ("N-47683-…") → undefined. */
export function majorVersion(versionOutput: string): number | undefined {
  const m = /^ff\w+ version (?:n)?(\d+)\.(\d+)/m.exec(versionOutput);
  return m ? Number(m[1]) : undefined;
}

/** One line saying which ffmpeg runs (for the local pipeline's startup notes). */
export function describeBinaries(b: MediaBinaries): string {
  return b.notice ? `Notice: ${b.notice}` : `ffmpeg: ${b.ffmpeg}, ffprobe: ${b.ffprobe} (${b.source === 'env' ? `${ENV.ffmpegPath}/${ENV.ffprobePath}` : 'system'})`;
}

/**
 * The npm packages set the execute bit in an install script (`chmod u+x`); when install scripts
 * were skipped (`npm ci --ignore-scripts`), the ffprobe binary arrives without it. Set it, as that
 * script would, rather than fail every video with EACCES.
 */
export function executable(path: string): string {
  try {
    accessSync(path, constants.X_OK);
  } catch {
    try {
      chmodSync(path, statSync(path).mode | 0o111);
    } catch (e) {
      throw new Error(`${path} is not executable and could not be made so (${(e as Error).message}): run chmod +x on it`);
    }
  }
  return path;
}
