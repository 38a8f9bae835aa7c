/**
 * The extraction Lambda's image (lambda/extract-frames/Dockerfile), checked statically (no Docker
 * engine here): the ffmpeg release pinned by version, digest and checksums, the same as the stack's
 * build arguments and the README; and the Dockerfile's own esbuild command, run here, yields a
 * handler bundle that needs nothing but Node built-ins and sharp.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { builtinModules } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { EXTRACT_DOCKERFILE_PATH, ffmpegBuildArgs, IMAGE_FFMPEG_PATH, IMAGE_FFPROBE_PATH, LAMBDA_FFMPEG } from '../../lib/stack/extraction-image';
import { REPO_ROOT } from '../../lib/stack/paths';

jest.setTimeout(180_000);

const dockerfile = fs.readFileSync(EXTRACT_DOCKERFILE_PATH, 'utf8');
/** Instructions, continuation lines joined, comments dropped. */
const lines = dockerfile
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));
const argDefault = (name: string) => lines.find((l) => l.startsWith(`ARG ${name}=`))?.slice(`ARG ${name}=`.length);

test('pins a maintained ffmpeg (>= 6) by version, image digest and the SHA-256 of both binaries, as the stack passes them', () => {
  expect(Number(LAMBDA_FFMPEG.version.split('.')[0])).toBeGreaterThanOrEqual(6);
  expect(LAMBDA_FFMPEG.image).toMatch(new RegExp(`^[\\w./-]+:${LAMBDA_FFMPEG.version.replace(/\./g, '\\.')}@sha256:[0-9a-f]{64}$`));
  for (const sum of [LAMBDA_FFMPEG.ffmpegSha256, LAMBDA_FFMPEG.ffprobeSha256]) expect(sum).toMatch(/^[0-9a-f]{64}$/);
  expect(ffmpegBuildArgs()).toEqual({
    FFMPEG_VERSION: argDefault('FFMPEG_VERSION'),
    FFMPEG_IMAGE: argDefault('FFMPEG_IMAGE'),
    FFMPEG_SHA256: argDefault('FFMPEG_SHA256'),
    FFPROBE_SHA256: argDefault('FFPROBE_SHA256'),
  });
  // The binaries come from that image and are checked before anything else uses them.
  expect(lines).toContain('FROM --platform=linux/amd64 ${FFMPEG_IMAGE} AS ffmpeg');
  expect(lines).toContain('COPY --from=ffmpeg /ffmpeg /ffprobe /opt/bin/');
  const check = lines.find((l) => l.startsWith('RUN echo "${FFMPEG_SHA256}'))!;
  expect(check).toContain('"${FFMPEG_SHA256}  /opt/bin/ffmpeg" | sha256sum -c -');
  expect(check).toContain('"${FFPROBE_SHA256}  /opt/bin/ffprobe" | sha256sum -c -');
  expect(check).toContain('grep -F "ffmpeg version ${FFMPEG_VERSION}"');
  expect(check).toContain('grep -F "ffprobe version ${FFMPEG_VERSION}"');
  // The handler finds them there.
  const env = lines.find((l) => l.startsWith('ENV FFMPEG_PATH='))!.replace(/\s+/g, ' ');
  expect(env).toBe(`ENV FFMPEG_PATH=${IMAGE_FFMPEG_PATH} FFPROBE_PATH=${IMAGE_FFPROBE_PATH} NODE_OPTIONS=--enable-source-maps`);
});

test('the README states the version, the image and both checksums, and how to update them', () => {
  const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf("### Updating the Lambda's ffmpeg"));
  for (const fact of [LAMBDA_FFMPEG.version, LAMBDA_FFMPEG.image, LAMBDA_FFMPEG.ffmpegSha256, LAMBDA_FFMPEG.ffprobeSha256]) expect(section).toContain(fact);
  expect(section).toMatch(/docker buildx imagetools inspect/);
});

test("runs on AWS's Node.js 22 Lambda base image, with the bundle, sharp and the handler command", () => {
  const froms = lines.filter((l) => l.startsWith('FROM '));
  expect(froms[froms.length - 1]).toBe('FROM --platform=linux/amd64 public.ecr.aws/lambda/nodejs:22 AS runtime');
  expect(lines).toContain('COPY --from=build /out/index.js /out/index.js.map ${LAMBDA_TASK_ROOT}/');
  expect(lines).toContain('COPY --from=build /out/node_modules ${LAMBDA_TASK_ROOT}/node_modules');
  expect(lines[lines.length - 1]).toBe('CMD ["index.handler"]');
});

test("the Dockerfile's esbuild command bundles a handler that needs only Node built-ins and sharp", () => {
  const run = lines.find((l) => l.includes('npx esbuild'))!;
  const args = run.slice(run.indexOf('npx esbuild') + 'npx esbuild'.length, run.indexOf('&&')).trim().split(/\s+/);
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'longsight-lambda-bundle-'));
  const esbuild = path.join(REPO_ROOT, 'node_modules', '.bin', 'esbuild');
  execFileSync(esbuild, args.map((a) => (a.startsWith('--outfile=') ? `--outfile=${path.join(out, 'index.js')}` : a)), { cwd: REPO_ROOT, stdio: 'pipe' });
  const bundle = fs.readFileSync(path.join(out, 'index.js'), 'utf8');
  const required = new Set([...bundle.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]));
  // The SDK's optional CRT signer is loaded in a try; the npm ffmpeg packages only without FFMPEG_PATH (set in the image).
  const allowed = new Set(['sharp', '@aws-sdk/signature-v4-crt', '@ffmpeg-installer/ffmpeg', '@ffprobe-installer/ffprobe']);
  for (const r of required) expect(builtinModules.includes(r.replace(/^node:/, '')) || allowed.has(r) ? 'ok' : r).toBe('ok');
  expect(required).toContain('sharp');
  // It loads and exports the handler (sharp from the repository's node_modules, as the image's npm install provides it).
  const probe = `const m = require(${JSON.stringify(path.join(out, 'index.js'))}); console.log(typeof m.handler);`;
  const loaded = execFileSync(process.execPath, ['-e', probe], { cwd: out, env: { PATH: process.env.PATH, NODE_PATH: path.join(REPO_ROOT, 'node_modules') }, encoding: 'utf8' });
  expect(loaded.trim().split('\n').pop()).toBe('function');
  fs.rmSync(out, { recursive: true, force: true });
});
