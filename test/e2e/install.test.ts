/**
 * The README's install step and a first run from another folder, as a user would: npm without a
 * warning about the project's config, `npm install -g .` (into a throwaway prefix) putting
 * `longsight` on the PATH, `longsight run clip.mp4 --json` from a folder outside the clone printing
 * one clean JSON object (relative path resolved there), `longsight jobs` listing it afterwards;
 * and `npm start --silent -- … --json` equally clean.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { RECIPES, videoFile } from '../support/videos';

jest.setTimeout(300_000);

const REPO = resolve(__dirname, '../..');
const run = promisify(execFile);

async function sh(cmd: string, args: string[], o: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<{ code: number; out: string; err: string }> {
  try {
    const r = await run(cmd, args, { cwd: o.cwd, env: { ...process.env, ...o.env }, maxBuffer: 64 * 1024 * 1024, timeout: 240_000 });
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === 'number' ? x.code : 1, out: x.stdout ?? '', err: x.stderr ?? '' };
  }
}

// npm's own variables from the `npm test` that may be running this file would say "inside an npm script".
const clean: NodeJS.ProcessEnv = Object.fromEntries(Object.keys(process.env).filter((k) => k.startsWith('npm_') || k === 'INIT_CWD').map((k) => [k, undefined]));

test("npm accepts the project's configuration (no warning on every command); dependencies' install scripts are off", async () => {
  const r = await sh('npm', ['config', 'get', 'ignore-scripts'], { cwd: REPO, env: clean });
  expect(r.code).toBe(0);
  expect(r.out.trim()).toBe('true');
  expect(r.err).not.toMatch(/warn/i);
});

test('installed with `npm install -g .`: from another folder, `longsight run clip.mp4 --json` is one JSON object; `longsight jobs` lists it; so does `npm start --silent`', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'longsight-install-'));
  const prefix = join(tmp, 'prefix');
  const install = await sh('npm', ['install', '-g', '.', '--prefix', prefix], { cwd: REPO, env: clean });
  expect(install.err).not.toMatch(/Unknown (project|env|user) config/);
  expect(install.code).toBe(0);

  const elsewhere = join(tmp, 'videos');
  mkdirSync(elsewhere);
  copyFileSync(await videoFile(RECIPES.h264Mp4), join(elsewhere, 'clip.mp4'));
  const env = { ...clean, PATH: `${join(prefix, 'bin')}:${process.env.PATH}`, LONGSIGHT_HOME: join(tmp, 'home') };
  const r = await sh('longsight', ['run', 'clip.mp4', '--json', '--frames', '2', '--max-new-tokens', '2', '-q', 'What is shown?'], { cwd: elsewhere, env });
  expect(r.code).toBe(0);
  const lines = r.out.split('\n').filter(Boolean);
  expect(lines).toHaveLength(1);
  const job = JSON.parse(lines[0]) as { jobId: string; status: string; file: string; endToEndMs: number; answers: unknown[] };
  expect(job).toMatchObject({ status: 'DONE', file: join(elsewhere, 'clip.mp4') });
  expect(job.answers).toHaveLength(1);
  expect(job.endToEndMs).toBeGreaterThan(0);

  const jobs = await sh('longsight', ['jobs'], { cwd: elsewhere, env });
  expect(jobs.code).toBe(0);
  expect(jobs.out).toMatch(new RegExp(`^${job.jobId}  DONE  .*s3://longsight-videos/clip\\.mp4`, 'm'));
  expect(jobs.out).toMatch(/1 job, newest first, from the local history of finished runs/);

  // The npm script: npm runs it in the clone; the relative path is still the caller's.
  const viaNpm = await sh('npm', ['--prefix', REPO, 'start', '--silent', '--', 'clip.mp4', '--json', '--frames', '2', '--max-new-tokens', '2'], { cwd: elsewhere, env });
  expect(viaNpm.code).toBe(0);
  const npmLines = viaNpm.out.split('\n').filter(Boolean);
  expect(npmLines).toHaveLength(1);
  expect(JSON.parse(npmLines[0])).toMatchObject({ status: 'DONE', file: join(elsewhere, 'clip.mp4') });
  expect(viaNpm.err).not.toMatch(/npm warn/);
});
