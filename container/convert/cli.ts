/**
 * `longsight convert <checkpoint-dir> <out-dir> [--target cpu|cuda] [--dtype fp32|fp16]`: the
 * command's argument parsing and progress bar (cli-progress on stderr); the conversion itself is
 * convertCheckpoint. The target picks the dtype: fp16 for CUDA (onnxruntime's CUDA
 * GroupQueryAttention kernel has no fp32), fp32 for the CPU (its EP upcasts fp16 anyway).
 */
import { Command, CommanderError, Option } from 'commander';
import * as cliProgress from 'cli-progress';
import { convertCheckpoint, type ConvertProgress, type PackageDtype } from './convert';
import type { ModelPackageManifest } from '../model/package-manifest';

export interface ConvertCommandIo {
  stderr?: NodeJS.WritableStream & { isTTY?: boolean };
  stdout?: NodeJS.WritableStream;
  /** Show the progress bar (default: when stderr is a terminal). */
  progress?: boolean;
}

const MB = 1024 * 1024;

export type ConvertTarget = 'cpu' | 'cuda';

/** The package dtype for an execution provider: fp16 on CUDA, fp32 on the CPU; an explicit dtype wins. */
export function packageDtypeFor(target: ConvertTarget, dtype?: PackageDtype): PackageDtype {
  return dtype ?? (target === 'cuda' ? 'fp16' : 'fp32');
}

/** Parses `argv` (arguments after `convert`), converts, prints a summary; throws with a clear message on bad input. */
export async function runConvertCommand(argv: string[], io: ConvertCommandIo = {}): Promise<ModelPackageManifest> {
  const stderr = io.stderr ?? process.stderr;
  const stdout = io.stdout ?? process.stdout;
  const cmd = new Command('longsight convert')
    .description('Convert a Hugging Face llava-onevision-qwen2-*-ov-hf checkpoint directory into a Longsight ONNX model package')
    .argument('<checkpoint-dir>', 'directory with config.json, *.safetensors, tokenizer.json, preprocessor_config.json')
    .argument('<out-dir>', 'directory to write the package to (created if missing)')
    .addOption(new Option('--target <ep>', 'where the package will run: cuda → fp16, cpu → fp32').choices(['cpu', 'cuda']).default('cpu'))
    .addOption(new Option('--dtype <dtype>', 'weight dtype of the package (overrides the target\'s)').choices(['fp32', 'fp16']))
    .exitOverride()
    // Errors are thrown (and printed once by the caller); help and usage go to our streams.
    .configureOutput({ writeOut: (s) => stdout.write(s), writeErr: (s) => stderr.write(s), outputError: () => undefined });
  try {
    cmd.parse(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) throw new Error(`longsight convert: ${err.message.replace(/^error: /, '')}`);
    throw err;
  }
  const [src, out] = cmd.processedArgs as [string, string];
  const opts = cmd.opts<{ target: ConvertTarget; dtype?: PackageDtype }>();
  const dtype = packageDtypeFor(opts.target, opts.dtype);
  if (opts.target === 'cuda' && dtype !== 'fp16') {
    stderr.write('warning: an fp32 package on the CUDA execution provider is refused by the engine (its GroupQueryAttention kernel is fp16/bf16 only)\n');
  }

  const showBar = io.progress ?? Boolean(stderr.isTTY);
  const bar = new cliProgress.SingleBar(
    {
      stream: stderr,
      format: 'converting [{bar}] {percentage}% | {doneMb}/{totalMb} MB | {stage} {detail}',
      hideCursor: true,
      noTTYOutput: showBar,
      notTTYSchedule: 2000,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  const onProgress = (p: ConvertProgress) => {
    if (!showBar) return;
    const payload = { stage: p.stage, detail: p.detail ?? '', doneMb: (p.done / MB).toFixed(0), totalMb: (p.total / MB).toFixed(0) };
    if (!started) {
      bar.start(Math.max(1, p.total), p.done, payload);
      started = true;
    } else {
      bar.setTotal(Math.max(1, p.total));
      bar.update(p.done, payload);
    }
  };
  const t0 = Date.now();
  try {
    const manifest = await convertCheckpoint(src, out, { dtype, onProgress, onNotice: (m) => stderr.write(`notice: ${m}\n`) });
    if (started) bar.stop();
    stdout.write(
      `converted ${manifest.modelId} (${manifest.text.numLayers} decoder layers, hidden ${manifest.text.hiddenSize}, ` +
        `vision ${manifest.vision.layersUsed} layers) to ${out} as ${dtype} (for the ${dtype === 'fp16' ? 'CUDA' : 'CPU'} EP) in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`,
    );
    return manifest;
  } catch (err) {
    if (started) bar.stop();
    throw err;
  }
}
