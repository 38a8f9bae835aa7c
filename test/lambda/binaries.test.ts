/** ffmpeg/ffprobe resolution: the npm-shipped ffprobe arrives without its execute bit when install scripts are skipped. */
import { accessSync, chmodSync, constants, copyFileSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { executable, resolveBinaries } from '../../lambda/extract-frames/binaries';

describe('media binaries', () => {
  it('prefers FFMPEG_PATH / FFPROBE_PATH (the Lambda layer)', () => {
    expect(resolveBinaries({ FFMPEG_PATH: '/opt/bin/ffmpeg', FFPROBE_PATH: '/opt/bin/ffprobe' })).toEqual({ ffmpeg: '/opt/bin/ffmpeg', ffprobe: '/opt/bin/ffprobe' });
  });

  it('makes a binary without its execute bit runnable, as the package install script would', () => {
    const dir = mkdtempSync(join(tmpdir(), 'longsight-bin-'));
    const copy = join(dir, 'ffprobe');
    copyFileSync(resolveBinaries({}).ffprobe, copy);
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
