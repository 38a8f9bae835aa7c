/**
 * The sample video `longsight run` uses when given none: generated once with the resolved (binaries.ts)
 * ffmpeg (a moving test pattern with a counter, 8 s, 640x360 H.264) and cached.
 */
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { resolveBinaries } from '../../lambda/extract-frames/binaries';

export async function ensureSampleVideo(cacheDir: string): Promise<string> {
  const file = join(cacheDir, 'samples', 'longsight-sample.mp4');
  if (existsSync(file)) return file;
  mkdirSync(join(cacheDir, 'samples'), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp.mp4`;
  const { ffmpeg } = resolveBinaries();
  const args = ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25:duration=8', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-movflags', '+faststart', tmp];
  await new Promise<void>((resolve, reject) => {
    const p = spawn(ffmpeg, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (c: Buffer) => (err += c.toString()));
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg could not generate the sample video (exit ${code}): ${err.trim()}`))));
  });
  try {
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    if (!existsSync(file)) throw e;
  }
  return file;
}
