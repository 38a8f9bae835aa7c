/**
 * `longsight model pull` against a loopback Hub that speaks the routes the Hub's JS client calls
 * (test/support/hub-server.ts), serving a tiny LLaVA-OneVision checkpoint in the Hugging Face
 * layout (two BF16 safetensors shards + index, the real Qwen tokenizer): pull → verified download →
 * converted package → `longsight run --model` answers; a second pull does nothing; an interrupted
 * download resumes with a byte range; a corrupted file, a missing repository and a private one are
 * refused with clear messages.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../container/cli/main';
import { ensureTinyModel } from '../../container/convert/tiny-model-package';
import { runPipeline } from '../../container/local/pipeline';
import { lastPulledModel } from '../../container/local/model';
import { startLoopbackHub, type LoopbackHub } from '../support/hub-server';
import { RECIPES, videoFile } from '../support/videos';
import { captureStream } from '../e2e/support/capture';

jest.setTimeout(300_000);

let hub: LoopbackHub;
let checkpointDir: string;
const REPO = 'org/tiny-llava';
const saved = { ...process.env };

beforeAll(async () => {
  checkpointDir = (await ensureTinyModel({ shards: 2, dtype: 'BF16' })).checkpointDir;
  hub = await startLoopbackHub();
  hub.addRepo(REPO, checkpointDir);
  hub.addRepo('org/private-llava', checkpointDir, { token: 'hf_loopbacktoken' });
});
afterAll(async () => {
  await hub?.close();
});
beforeEach(() => {
  // Each test its own home (downloads, packages, the default model) and the loopback Hub.
  process.env.LONGSIGHT_HOME = mkdtempSync(join(tmpdir(), 'longsight-pull-'));
  process.env.HF_ENDPOINT = hub.url;
  delete process.env.HF_TOKEN;
  hub.requests.length = 0;
  delete hub.faults.truncate;
  delete hub.faults.corrupt;
});
afterEach(() => {
  for (const k of ['LONGSIGHT_HOME', 'HF_ENDPOINT', 'HF_TOKEN']) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
});

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['node', 'longsight', ...args], { out: (s) => out.push(s), err: (s) => err.push(s) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const hubCheckpoint = (commit: string) => join(process.env.LONGSIGHT_HOME!, 'hub', 'org--tiny-llava', commit);

test('pull: the checkpoint downloaded and verified, converted; `run --model` answers with it; a second pull does nothing', async () => {
  const out = join(process.env.LONGSIGHT_HOME!, 'd');
  const r = await cli('model', 'pull', REPO, '--out', out);
  expect(r.code).toBe(0);
  // The total size up front, then each file as it is verified.
  expect(r.err).toMatch(/^Pulling org\/tiny-llava@main for the cpu \(fp32 package\)…\ncommit [0-9a-f]{12}: 12 files, [\d.]+ MB to download → /);
  expect(r.err).toMatch(/model-00002-of-00002\.safetensors: downloaded/);
  expect(r.err).toMatch(/Use it: longsight run --model /);
  expect(r.out).toBe(out); // the package path, alone on stdout
  const record = JSON.parse(readFileSync(join(out, 'longsight-pull.json'), 'utf8'));
  expect(record).toMatchObject({ repo: REPO, revision: 'main', target: 'cpu', dtype: 'fp32', hub: hub.url });
  expect(JSON.parse(readFileSync(join(out, 'longsight-model.json'), 'utf8')).dtype).toBe('fp32');
  // Every file of the checkpoint arrived byte for byte (README.md was not wanted).
  const got = hubCheckpoint(record.commit);
  expect(readdirSync(got).sort()).toEqual(readdirSync(checkpointDir).sort());
  for (const f of readdirSync(checkpointDir)) expect(sha256(join(got, f))).toBe(sha256(join(checkpointDir, f)));
  // The client's routes: model info (commit), the tree, the resolve probes (Range 0-0), LFS through the CDN redirect.
  const paths = hub.requests.map((q) => q.path);
  expect(paths[0]).toMatch(/^\/api\/models\/org\/tiny-llava\/revision\/main\?.*expand=sha/);
  expect(paths).toContainEqual(expect.stringMatching(new RegExp(`^/api/models/org/tiny-llava/tree/${record.commit}\\?recursive=true`)));
  expect(hub.requests.filter((q) => q.path.includes('/resolve/') && q.range === 'bytes=0-0')).toHaveLength(readdirSync(checkpointDir).length);
  expect(paths.filter((p) => p.startsWith('/cdn/'))).not.toHaveLength(0);
  expect(lastPulledModel()).toBe(out);

  // `npm start -- --model d`: the pipeline on this package answers.
  const run = await runPipeline({ videos: [await videoFile(RECIPES.h264Mp4)], model: out, workers: 1, frames: 2, maxNewTokens: 2, questions: ['What is shown?'], out: captureStream(), err: captureStream(), timeoutSeconds: 240 });
  expect(run.exitCode).toBe(0);
  expect(run.jobs).toEqual([expect.objectContaining({ status: 'DONE', answers: 1 })]);
  // And plain `longsight run` (no --model) takes the last pulled CPU package.
  const written: string[] = [];
  const spy = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (written.push(String(chunk)), true));
  const viaCli = await cli('run', await videoFile(RECIPES.h264Mp4), '--frames', '2', '--max-new-tokens', '2').finally(() => spy.mockRestore());
  expect(viaCli.code).toBe(0);
  expect(written.join('')).toMatch(new RegExp(`Model: \\S+ \\(${out.replace(/[.]/g, '\\.')}\\)`));

  // Again: one call resolves `main` to the same commit, and nothing is downloaded or converted.
  hub.requests.length = 0;
  const again = await cli('model', 'pull', REPO, '--out', out);
  expect(again.code).toBe(0);
  expect(again.out).toBe(out);
  expect(hub.requests.map((q) => q.path)).toEqual([expect.stringMatching(/\/revision\/main\?/)]);
  // Pinned to the commit: not even that call.
  hub.requests.length = 0;
  expect((await cli('model', 'pull', REPO, '--out', out, '--revision', record.commit)).code).toBe(0);
  expect(hub.requests).toEqual([]);
});

test('an interrupted download resumes where it stopped (Range from the bytes on disk) and completes verified', async () => {
  const shard = 'model-00002-of-00002.safetensors';
  hub.faults.truncate = { path: shard, afterBytes: 3_000_000 };
  const first = await cli('model', 'pull', REPO, '--target', 'cuda');
  expect(first.code).toBe(1);
  expect(first.err).toMatch(new RegExp(`download of ${shard} interrupted after [\\d.]+ of [\\d.]+ MB .*run the same command again to resume`));
  const commit = hub.requests.map((q) => /\/tree\/([0-9a-f]{40})/.exec(q.path)?.[1]).find(Boolean)!;
  const partial = join(hubCheckpoint(commit), `${shard}.incomplete`);
  const have = statSync(partial).size;
  expect(have).toBeGreaterThan(0);
  expect(have).toBeLessThanOrEqual(3_000_000);
  expect(existsSync(join(hubCheckpoint(commit), shard))).toBe(false);

  hub.requests.length = 0;
  const second = await cli('model', 'pull', REPO, '--target', 'cuda');
  expect(second.code).toBe(0);
  const size = statSync(join(checkpointDir, shard)).size;
  const body = hub.requests.filter((q) => q.path.startsWith('/cdn/') && q.range !== 'bytes=0-0');
  // The shard's rest only: from the first missing byte to the end.
  expect(body.map((q) => q.range)).toContain(`bytes=${have}-${size - 1}`);
  expect(sha256(join(hubCheckpoint(commit), shard))).toBe(sha256(join(checkpointDir, shard)));
  expect(existsSync(partial)).toBe(false);
  const pkg = second.out;
  expect(pkg).toBe(join(process.env.LONGSIGHT_HOME!, 'models', 'org--tiny-llava-cuda'));
  expect(JSON.parse(readFileSync(join(pkg, 'longsight-model.json'), 'utf8')).dtype).toBe('fp16');
  // A CUDA package is for the GPU workers, not the default of `longsight run` (CPU workers).
  expect(lastPulledModel()).toBeUndefined();
  expect(second.err).toMatch(/For the GPU workers: aws s3 sync /);
});

test('a file that fails verification: a clear error with both hashes, nothing of it kept, no package', async () => {
  const shard = 'model-00001-of-00002.safetensors';
  hub.faults.corrupt = shard;
  const out = join(process.env.LONGSIGHT_HOME!, 'pkg');
  const r = await cli('model', 'pull', REPO, '--out', out);
  expect(r.code).toBe(1);
  expect(r.err).toMatch(new RegExp(`${shard} of org/tiny-llava@[0-9a-f]{7} failed verification: sha256 [0-9a-f]{64}, expected ${sha256(join(checkpointDir, shard))}\\. The download was deleted`));
  const commit = hub.requests.map((q) => /\/tree\/([0-9a-f]{40})/.exec(q.path)?.[1]).find(Boolean)!;
  expect(readdirSync(hubCheckpoint(commit)).filter((f) => f.startsWith(shard))).toEqual([]);
  expect(existsSync(out)).toBe(false);
});

test('a missing repository, a malformed name, a private repository without and with HF_TOKEN', async () => {
  const missing = await cli('model', 'pull', 'org/no-such-model');
  expect(missing.code).toBe(3);
  expect(missing.err).toMatch(new RegExp(`repository org/no-such-model not found on ${hub.url.replace(/[.]/g, '\\.')} \\(HTTP 404; check the name; if it is private or gated, set HF_TOKEN`));

  const bad = await cli('model', 'pull', 'not-a-repo');
  expect(bad.code).toBe(2);
  expect(bad.err).toMatch(/"not-a-repo" is not a Hub model repository name: expected <org>\/<name>/);

  const closed = await cli('model', 'pull', 'org/private-llava');
  expect(closed.code).toBe(3);
  expect(closed.err).toMatch(/repository org\/private-llava not found .*HTTP 401/);

  process.env.HF_TOKEN = 'not-a-token';
  expect((await cli('model', 'pull', 'org/private-llava')).err).toMatch(/HF_TOKEN must be a Hugging Face access token \(it starts with "hf_"/);

  process.env.HF_TOKEN = 'hf_loopbacktoken';
  hub.requests.length = 0;
  const open = await cli('model', 'pull', 'org/private-llava');
  expect(open.code).toBe(0);
  // The token went with every request to the Hub, the LFS redirects (same origin) included.
  expect(hub.requests.length).toBeGreaterThan(10);
  expect(hub.requests.every((q) => q.authorization === 'Bearer hf_loopbacktoken')).toBe(true);
});
