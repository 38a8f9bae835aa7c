/**
 * Where ffmpeg and ffprobe are: FFMPEG_PATH / FFPROBE_PATH (the Lambda layer's /opt/bin), else the
 * static binaries shipped by the npm packages @ffmpeg-installer/ffmpeg and @ffprobe-installer/ffprobe.
 */
import { accessSync, chmodSync, constants, statSync } from 'node:fs';
import { ENV } from '../../lib/contracts/runtime-env';

export interface MediaBinaries {
  ffmpeg: string;
  ffprobe: string;
}

export function resolveBinaries(env: NodeJS.ProcessEnv = process.env): MediaBinaries {
  // Required lazily: the deployed bundle does not carry the npm binaries and sets the env vars instead.
  const ffmpeg = env[ENV.ffmpegPath] || executable((require('@ffmpeg-installer/ffmpeg') as { path: string }).path);
  const ffprobe = env[ENV.ffprobePath] || executable((require('@ffprobe-installer/ffprobe') as { path: string }).path);
  return { ffmpeg, ffprobe };
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
