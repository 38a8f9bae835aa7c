/**
 * ffmpeg/ffprobe resolution: FFMPEG_PATH/FFPROBE_PATH, else a system build 5+ on PATH, else the
 * npm-shipped fallback with a notice; and the npm-shipped ffprobe arrives without its execute bit
 * when install scripts are skipped.
 */
import { accessSync, chmodSync, constants, copyFileSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { describeBinaries, executable, majorVersion, resolveBinaries } from '../../lambda/extract-frames/binaries';

describe('media binaries', () => {
  it('prefers FFMPEG_PATH / FFPROBE_PATH (the Lambda image)', () => {
    expect(resolveBinaries({ FFMPEG_PATH: '/opt/bin/ffmpeg', FFPROBE_PATH: '/opt/bin/ffprobe' })).toEqual({ ffmpeg: '/opt/bin/ffmpeg', ffprobe: '/opt/bin/ffprobe', source: 'env' });
  });

  /** A directory whose ffmpeg/ffprobe print `version`, as a system install would. */
  function fakeSystem(version: string): string {
    const dir = mkdtempSync(join(tmpdir(), 'longsight-path-'));
    for (const name of ['ffmpeg', 'ffprobe']) {
      writeFileSync(join(dir, name), `#!/bin/sh\necho "${name} version ${version} Copyright (c) 2000-2025 the FFmpeg developers"\n`, { mode: 0o755 });
    }
    return dir;
  }

  it('prefers a system ffmpeg 5 or newer on PATH, keeping the npm ffprobe as the second prober', () => {
    const dir = fakeSystem('7.1.1-static');
    const b = resolveBinaries({ PATH: `${dir}:/usr/bin:/bin` });
    expect(b).toMatchObject({ ffmpeg: 'ffmpeg', ffprobe: 'ffprobe', source: 'system' });
    expect(b.secondProber).toMatch(/@ffprobe-installer/);
    expect(b.notice).toBeUndefined();
  });

  it('falls back to the npm-shipped builds, announced, when PATH has none or only an old one', () => {
    for (const env of [{ PATH: '' }, { PATH: `${fakeSystem('4.4.2')}:/bin` }]) {
      const b = resolveBinaries(env);
      expect(b.source).toBe('npm');
      expect(b.ffmpeg).toMatch(/@ffmpeg-installer/);
      expect(b.notice).toMatch(/no system ffmpeg 5\+ found on PATH: using the npm-shipped static builds .* apt-get install ffmpeg/);
      expect(describeBinaries(b)).toMatch(/^Notice: /);
    }
    expect(majorVersion('ffmpeg version 5.1.9-0+deb12u1 Copyright')).toBe(5);
    expect(majorVersion('ffmpeg version n6.1.2 Copyright')).toBe(6);
    expect(majorVersion('ffmpeg version N-47683-g0e8eb07980-static')).toBeUndefined();
  });

  it('makes a binary without its execute bit runnable, as the package install script would', () => {
    const dir = mkdtempSync(join(tmpdir(), 'longsight-bin-'));
    const copy = join(dir, 'ffprobe');
    copyFileSync(resolveBinaries({ PATH: '' }).ffprobe, copy);
    chmodSync(copy, 0o644);
    expect(() => accessSync(copy, constants.X_OK)).toThrow();
    expect(executable(copy)).toBe(copy);
    expect(statSync(copy).mode & 0o111).toBe(0o111);
    const run = spawnSync(copy, ['-version'], { encoding: 'utf8' });
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/ffprobe version/);
  });

  it('names the file when it cannot be made executable', () => {
    expect(() => executable('/nonexistent/ffprobe')).toThrow(/\/nonexistent\/ffprobe is not executable and could not be made so/);
  });
});
