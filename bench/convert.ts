/**
 * `npm run bench:convert`: generates a random checkpoint of a real model's shape (default the
 * 0.5B: Qwen2-0.5B decoder + SigLIP-so400m, BF16 like the hub files) and converts it to fp32 and
 * fp16 packages, each phase in its own process so its peak RSS is its own. Prints wall time,
 * throughput and peak RSS per phase (figures go to BENCHMARKS.md).
 *
 *   npm run bench:convert [-- --preset qwen2-0.5b|qwen2-7b-widths|tiny|wide] [--keep]
 *
 * `qwen2-7b-widths` has every tensor shape of llava-onevision-qwen2-7b-ov-hf (hidden 3584,
 * MLP 18944, vocab 152128, untied lm_head, SigLIP-so400m) but 2 decoder and 2 vision layers: the
 * converter's peak memory is set by its largest tensors (embed_tokens, lm_head, the fused MLP),
 * not by the layer count, so this measures the 7B conversion's peak RSS without 15 GB of disk.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { convertCheckpoint } from '../container/convert/convert';
import { generateTinyCheckpoint, type TinyCheckpointOptions } from '../container/testing/tiny-checkpoint';

const PRESETS: Record<string, TinyCheckpointOptions> = {
  tiny: { preset: 'tiny' },
  wide: { preset: 'wide' },
  'qwen2-0.5b': { preset: 'qwen2-0.5b' },
  'qwen2-7b-widths': {
    preset: 'qwen2-0.5b',
    tieWordEmbeddings: false,
    vision: { numLayers: 2 },
    text: { hiddenSize: 3584, intermediateSize: 18944, numLayers: 2, numHeads: 28, numKvHeads: 4, vocabSize: 152128 },
  },
};

const GB = 1024 ** 3;

function dirBytes(dir: string): number {
  return fs.readdirSync(dir).reduce((a, f) => a + fs.statSync(path.join(dir, f)).size, 0);
}

async function phase(name: string, args: string[]): Promise<void> {
  const t0 = Date.now();
  if (name === 'generate') generateTinyCheckpoint(args[0], { ...PRESETS[args[1]], dtype: 'BF16', seed: 1 });
  else await convertCheckpoint(args[0], args[1], { dtype: name === 'convert-fp16' ? 'fp16' : 'fp32' });
  const seconds = (Date.now() - t0) / 1000;
  // maxRSS is in kilobytes.
  const cpu = process.cpuUsage();
  process.stdout.write(JSON.stringify({ phase: name, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, peakRssBytes: process.resourceUsage().maxRSS * 1024 }) + '\n');
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--phase') return phase(argv[1], argv.slice(2));
  const preset = argv.includes('--preset') ? argv[argv.indexOf('--preset') + 1] : 'qwen2-0.5b';
  if (!PRESETS[preset]) throw new Error(`unknown --preset ${preset} (one of ${Object.keys(PRESETS).join(', ')})`);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'longsight-bench-convert-'));
  const ckpt = path.join(root, 'checkpoint');
  const runPhase = (name: string, ...args: string[]) => {
    const out = execFileSync(process.execPath, [...process.execArgv, __filename, '--phase', name, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    return JSON.parse(out.trim().split('\n').pop()!) as { phase: string; seconds: number; cpuSeconds: number; peakRssBytes: number };
  };
  try {
    console.log(`preset ${preset}, machine: ${os.cpus().length} × ${os.cpus()[0]?.model}, ${(os.totalmem() / GB).toFixed(0)} GB RAM`);
    const gen = runPhase('generate', ckpt, preset);
    const ckptBytes = dirBytes(ckpt);
    console.log(`generate  ${preset} BF16 checkpoint: ${(ckptBytes / GB).toFixed(2)} GB in ${gen.seconds.toFixed(1)} s wall / ${gen.cpuSeconds.toFixed(1)} s CPU, peak RSS ${(gen.peakRssBytes / GB).toFixed(2)} GB`);
    for (const dtype of ['fp32', 'fp16']) {
      const out = path.join(root, `package-${dtype}`);
      const r = runPhase(`convert-${dtype}`, ckpt, out);
      const outBytes = dirBytes(out);
      console.log(`convert → ${dtype}: ${(ckptBytes / GB).toFixed(2)} GB in, ${(outBytes / GB).toFixed(2)} GB out, ${r.seconds.toFixed(1)} s wall / ${r.cpuSeconds.toFixed(1)} s CPU, peak RSS ${(r.peakRssBytes / GB).toFixed(2)} GB`);
      fs.rmSync(out, { recursive: true, force: true });
    }
  } finally {
    if (!argv.includes('--keep')) fs.rmSync(root, { recursive: true, force: true });
    else console.log(`kept ${root}`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
