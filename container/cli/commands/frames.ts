/**
 * `longsight frames <video> [--frames N] [--out DIR]`: "what did the model see?". Runs, on this
 * machine, exactly what the extraction Lambda runs (probe, the same N sample times, seek or pass,
 * rgb24 decode, Pillow-exact resize, stored PNGs) and what the worker then runs on those files
 * (decode, resize if needed, rescale and normalise with the model's constants), and writes:
 *   DIR/frame-00000.png …   the stored frames, as the Lambda would put them in S3
 *   DIR/timestamps.json     seconds, one per frame, as in the frame manifest
 *   DIR/pixel_values.npy    float32 [N, 3, S, S]: exactly the tensor the vision tower receives
 */
import { mkdirSync, openSync, readSync, closeSync, statSync, writeFileSync } from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { ExtractionConfigSchema } from '../../../lib/contracts/env-config';
import { frameKey } from '../../../lib/contracts/s3-layout';
import { LLAVA_ONEVISION_PROCESSOR, type ProcessorConstants } from '../../../lib/preprocess';
import { resolveBinaries } from '../../../lambda/extract-frames/binaries';
import { checkProbe, checkSignature, PermanentInputError, reasonForProbeFailure } from '../../../lambda/extract-frames/failure-reasons';
import { sniff, SNIFF_BYTES } from '../../../lambda/extract-frames/file-signature';
import { manifestTimestamp } from '../../../lambda/extract-frames/frame-store';
import { ProbeFailure, probeVideo } from '../../../lambda/extract-frames/probe';
import { sampleFrames } from '../../../lambda/extract-frames/sample-frames';
import { demuxerFor } from '../../../lambda/extract-frames/input-restrictions';
import { loadModelPackage } from '../../model/package-manifest';
import { framesToPixels } from '../../runtime/preprocess';
import { CliError, EXIT } from '../exit-codes';
import { npyFloat32 } from '../npy';
import { callerDir } from '../caller-dir';

export interface FramesOptions {
  frames: number;
  out?: string;
  /** A model package: its processor constants (else LLaVA-OneVision's stock ones). */
  model?: string;
  format?: 'png' | 'jpeg';
  json?: boolean;
}

/** The processor constants the worker would use: the model package's, or the stock LLaVA-OneVision ones. */
export function processorConstants(modelDir: string | undefined): { constants: ProcessorConstants; source: string } {
  if (!modelDir) return { constants: LLAVA_ONEVISION_PROCESSOR, source: 'LLaVA-OneVision stock processor constants (no --model)' };
  const v = loadModelPackage(modelDir).manifest.vision;
  return { constants: { imageSize: v.imageSize, mean: v.imageMean, std: v.imageStd, rescaleFactor: v.rescaleFactor, resample: v.resample }, source: `model package ${modelDir}` };
}

function readHead(file: string): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(SNIFF_BYTES);
    return buf.subarray(0, readSync(fd, buf, 0, SNIFF_BYTES, 0));
  } finally {
    closeSync(fd);
  }
}

export async function framesCommand(video: string, o: FramesOptions, print: (s: string) => void, progress: (s: string) => void = () => undefined): Promise<number> {
  const file = resolve(video);
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    throw new CliError(`video not found: ${file}`, EXIT.notFound);
  }
  const out = resolve(o.out ?? `frames-${basename(file, extname(file))}`);
  // The Lambda's own defaults (frame size, limits), with the format asked for.
  const extraction = ExtractionConfigSchema.parse({ frames: o.frames, ...(o.format ? { format: o.format } : {}) });
  const { constants, source } = processorConstants(o.model);
  const { ffmpeg, ffprobe } = resolveBinaries();
  const started = Date.now();
  try {
    if (size === 0) throw new PermanentInputError('empty file (0 bytes)');
    const head = readHead(file);
    const signature = sniff(head);
    checkSignature(signature);
    // As the Lambda: the demuxer fixed to what the bytes are (input-restrictions.ts), which also
    // tells whether seeks in this container are exact (seek-accuracy.ts).
    const demuxer = demuxerFor(signature.kind);
    let probe;
    try {
      probe = await probeVideo(ffprobe, file, { demuxer });
    } catch (e) {
      if (e instanceof ProbeFailure) throw new PermanentInputError(reasonForProbeFailure(e.stderr, signature, head));
      throw e;
    }
    const { durationSeconds } = checkProbe(probe, extraction, signature);
    let shown = 0;
    const sampled = await sampleFrames({
      ffmpeg,
      ffprobe,
      input: file,
      demuxer,
      video: probe.video!,
      durationSeconds,
      frames: o.frames,
      extraction,
      onProgress: (d, t) => {
        if (d === t || d - shown >= Math.max(1, t / 10)) progress(`frames ${(shown = d)}/${t}`);
      },
    });
    const ext = extraction.format === 'jpeg' ? 'jpg' : 'png';
    mkdirSync(out, { recursive: true });
    sampled.frames.forEach((f, i) => writeFileSync(join(out, basename(frameKey('x', i, ext))), f.data));
    const timestamps = sampled.frames.map((f) => manifestTimestamp(f.timestamp));
    writeFileSync(join(out, 'timestamps.json'), JSON.stringify(timestamps) + '\n');
    const pixels = await framesToPixels(sampled.frames.map((f) => f.data), constants);
    const shape = [sampled.frames.length, 3, constants.imageSize, constants.imageSize];
    writeFileSync(join(out, 'pixel_values.npy'), npyFloat32(shape, pixels));
    const summary = { out, frames: sampled.frames.length, shape, mode: sampled.strategy.mode, keyframeSeconds: sampled.keyframeSeconds, format: extraction.format, constants: source, seconds: (Date.now() - started) / 1000 };
    if (o.json) print(JSON.stringify(summary));
    else {
      print(`${summary.frames} frames of ${basename(file)} (${summary.mode === 'all' ? 'every frame' : summary.mode === 'pass' ? 'decoding passes' : 'one seek per frame'}) in ${summary.seconds.toFixed(1)} s → ${out}`);
      print(`  ${sampled.frames.length} × frame-NNNNN.${ext} (${extraction.imageSize}×${extraction.imageSize}, ${extraction.format === 'png' ? 'lossless' : `JPEG q${extraction.jpegQuality}, lossy`}), timestamps.json, pixel_values.npy [${shape.join(', ')}] float32 (${source})`);
    }
    return EXIT.ok;
  } catch (e) {
    if (e instanceof PermanentInputError) throw new CliError(`${basename(file)}: ${e.reason}`, EXIT.failed);
    throw e;
  }
}

/** Adds `frames` to the program (main.ts registers it with one line). */
export function registerFramesCommand(program: Command, print: (s: string) => void, setExit: (code: number) => void): void {
  const count = (v: string) => {
    if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 1024) throw new InvalidArgumentError('--frames must be a whole number from 1 to 1024');
    return Number(v);
  };
  program
    .command('frames')
    .description('What the model sees: sample and preprocess a video exactly as the Lambda and worker do; writes the frames, timestamps.json and pixel_values.npy')
    .argument('<video>', 'a video file')
    .option('-f, --frames <n>', 'frames to sample (the extraction default)', count, ExtractionConfigSchema.parse({}).frames)
    .option('-o, --out <dir>', 'where to write (default ./frames-<video name>)')
    .addOption(new Option('--model <dir>', "a model package: its processor constants (default: LLaVA-OneVision's stock ones)").env('LONGSIGHT_MODEL_DIR'))
    .addOption(new Option('--format <format>', 'stored frame format: png is lossless, jpeg lossy').choices(['png', 'jpeg']))
    .option('--json', 'a JSON summary on stdout')
    .action(async (video: string, o: Record<string, unknown>) => {
      // `npm run … -- file.mp4` runs in the package root: paths are relative to where npm was called.
      const from = (p: string) => resolve(callerDir(), p);
      const opts = { frames: o.frames as number, out: o.out ? from(o.out as string) : undefined, model: o.model ? from(o.model as string) : undefined, format: o.format as FramesOptions['format'], json: Boolean(o.json) };
      // Progress on a terminal only (a pipe or a log file gets the summary alone).
      setExit(await framesCommand(from(video), opts, print, (s) => process.stderr.isTTY && process.stderr.write(`${s}\n`)));
    });
}
