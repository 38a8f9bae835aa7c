/**
 * `longsight convert` argument handling and output (the CLI entry point wires runConvertCommand).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { runConvertCommand } from '../../container/convert/cli';
import { loadModelPackage } from '../../container/model/package-manifest';
import { generateTinyCheckpoint } from '../../container/testing/tiny-checkpoint';
import { makeTmp } from './helpers';

jest.setTimeout(180_000);

let tmp: string;
let ckpt: string;
beforeAll(() => {
  tmp = makeTmp('convert-cli');
  ckpt = path.join(tmp, 'ckpt');
  generateTinyCheckpoint(ckpt, { seed: 21, dtype: 'BF16' });
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function capture() {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (c) => (text += c.toString()));
  return { stream, text: () => text };
}

it('converts with --dtype fp16, shows progress on stderr and a summary on stdout', async () => {
  const out = capture();
  const err = capture();
  const dst = path.join(tmp, 'pkg16');
  const manifest = await runConvertCommand([ckpt, dst, '--dtype', 'fp16'], { stdout: out.stream, stderr: err.stream, progress: true });
  expect(manifest.dtype).toBe('fp16');
  expect(loadModelPackage(dst).manifest.source.sourceDtype).toBe('BF16');
  expect(out.text()).toMatch(/^converted longsight\/tiny-llava-onevision-tiny \(2 decoder layers, hidden 64, vision 2 layers\) to .*pkg16 as fp16 \(for the CUDA EP\) in [\d.]+ s\n$/);
  expect(err.text()).toMatch(/converting \[.*\] 100% \| \d+\/\d+ MB \| done/);
});

it('defaults to fp32 (the CPU target)', async () => {
  const dst = path.join(tmp, 'pkg32');
  const manifest = await runConvertCommand([ckpt, dst], { stdout: capture().stream, stderr: capture().stream });
  expect(manifest.dtype).toBe('fp32');
  expect(fs.statSync(path.join(dst, 'embed_tokens.bin')).size).toBe(152000 * 64 * 4);
});

it('--target cuda makes an fp16 package; --dtype overrides the target, with a warning when the engine would refuse it', async () => {
  const out = capture();
  const cuda = await runConvertCommand([ckpt, path.join(tmp, 'cuda'), '--target', 'cuda'], { stdout: out.stream, stderr: capture().stream });
  expect(cuda.dtype).toBe('fp16');
  expect(out.text()).toMatch(/as fp16 \(for the CUDA EP\)/);
  const err = capture();
  const forced = await runConvertCommand([ckpt, path.join(tmp, 'cuda32'), '--target', 'cuda', '--dtype', 'fp32'], { stdout: capture().stream, stderr: err.stream });
  expect(forced.dtype).toBe('fp32');
  expect(err.text()).toMatch(/warning: an fp32 package on the CUDA execution provider is refused by the engine/);
  const quiet = { stdout: capture().stream, stderr: capture().stream };
  await expect(runConvertCommand([ckpt, path.join(tmp, 'z'), '--target', 'tpu'], quiet)).rejects.toThrow(/option '--target <ep>' argument 'tpu' is invalid\. Allowed choices are cpu, cuda/);
});

it('rejects an unknown dtype and missing arguments with a usage error', async () => {
  const quiet = { stdout: capture().stream, stderr: capture().stream };
  await expect(runConvertCommand([ckpt, path.join(tmp, 'x'), '--dtype', 'int8'], quiet)).rejects.toThrow(/longsight convert: option '--dtype <dtype>' argument 'int8' is invalid\. Allowed choices are fp32, fp16/);
  await expect(runConvertCommand([ckpt], quiet)).rejects.toThrow(/longsight convert: missing required argument 'out-dir'/);
});

it('reports a missing checkpoint directory', async () => {
  await expect(runConvertCommand([path.join(tmp, 'nope'), path.join(tmp, 'y')], { stdout: capture().stream, stderr: capture().stream })).rejects.toThrow(/nope is not a directory/);
});
