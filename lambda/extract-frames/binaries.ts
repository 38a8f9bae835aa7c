/**
 * Where ffmpeg and ffprobe are: FFMPEG_PATH / FFPROBE_PATH (the Lambda layer's /opt/bin), else the
 * static binaries shipped by the npm packages @ffmpeg-installer/ffmpeg and @ffprobe-installer/ffprobe.
 */
import { ENV } from '../../lib/contracts/runtime-env';

export interface MediaBinaries {
  ffmpeg: string;
  ffprobe: string;
}

export function resolveBinaries(env: NodeJS.ProcessEnv = process.env): MediaBinaries {
  // Required lazily: the deployed bundle does not carry the npm binaries and sets the env vars instead.
  const ffmpeg = env[ENV.ffmpegPath] || (require('@ffmpeg-installer/ffmpeg') as { path: string }).path;
  const ffprobe = env[ENV.ffprobePath] || (require('@ffprobe-installer/ffprobe') as { path: string }).path;
  return { ffmpeg, ffprobe };
}
