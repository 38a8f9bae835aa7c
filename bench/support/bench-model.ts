/**
 * The benchmarks' 0.5B-shaped model: a random checkpoint with llava-onevision-qwen2-0.5b-ov-hf's
 * shapes (SigLIP-so400m, 26 layers + Qwen2-0.5B), generated once into .cache/bench-lmm/ (minutes)
 * and converted to an fp32 package, rebuilt whenever the converter's sources change. Never committed.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { convertCheckpoint } from '../../container/convert/convert';
import { generateTinyCheckpoint } from '../../container/testing/tiny-checkpoint';

const ROOT = path.resolve(__dirname, '../..');

export const benchLog = (bench: string) => (msg: string) => process.stderr.write(`[bench:${bench} ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const log = benchLog('model');

function converterHash(): string {
  const h = createHash('sha256');
  for (const dir of ['container/convert', 'container/onnx', 'container/testing', 'container/safetensors', 'container/model']) {
    for (const f of fs.readdirSync(path.join(ROOT, dir)).sort()) if (f.endsWith('.ts')) h.update(fs.readFileSync(path.join(ROOT, dir, f)));
  }
  return h.digest('hex').slice(0, 12);
}

export async function ensureBenchPackage(): Promise<string> {
  const root = path.join(ROOT, '.cache', 'bench-lmm');
  const ckpt = path.join(root, 'checkpoint-qwen2-0.5b-bf16-seed1');
  const pkg = path.join(root, `package-fp32-${converterHash()}`);
  if (fs.existsSync(path.join(pkg, 'READY'))) return pkg;
  if (!fs.existsSync(path.join(ckpt, 'READY'))) {
    fs.rmSync(ckpt, { recursive: true, force: true });
    log(`generating a random qwen2-0.5b-shaped BF16 checkpoint in ${ckpt} …`);
    generateTinyCheckpoint(ckpt, { preset: 'qwen2-0.5b', dtype: 'BF16', seed: 1 });
    fs.writeFileSync(path.join(ckpt, 'READY'), new Date().toISOString());
  }
  for (const old of fs.readdirSync(root)) if (old.startsWith('package-fp32-')) fs.rmSync(path.join(root, old), { recursive: true, force: true });
  log('converting to fp32 …');
  await convertCheckpoint(ckpt, pkg, { dtype: 'fp32' });
  fs.writeFileSync(path.join(pkg, 'READY'), new Date().toISOString());
  return pkg;
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
