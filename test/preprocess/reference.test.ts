/**
 * What the model sees, against the reference itself: Pillow's Image.resize (BICUBIC) and
 * transformers' rescale/normalise steps in numpy (Debian's python3-pil/python3-numpy), on frames
 * generated here and on frames ffmpeg decodes from generated videos.
 * Goal (issue 11): max |Δ| ≤ 1 level and ≥ 99% of values equal, downscaling and upscaling; on
 * x86-64 the port is exact, and that is asserted too.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { assemblePilResize, bytesModule } from '../../lib/preprocess/build-wasm';
import { framesToPixels } from '../../container/runtime/preprocess';
import { resolveBinaries } from '../../lambda/extract-frames/binaries';
import { extractFrames } from '../../lambda/extract-frames/frame-extractor';
import { planSamples } from '../../lambda/extract-frames/frame-sampler';
import { probeVideo } from '../../lambda/extract-frames/probe';
import { runProcess } from '../../lambda/extract-frames/process';
import { normalisationTable, pilResize, PIL_FILTERS, type ProcessorConstants } from '../../lib/preprocess';
import { compareBytes, pillowResize } from '../support/pillow';
import { DERIVED, RECIPES, videoFiles } from '../support/videos';

const exactHere = process.arch === 'x64';

function expectReference(ours: ArrayLike<number>, ref: ArrayLike<number>, what: string) {
  const { maxDiff, equalFraction } = compareBytes(ours, ref);
  expect({ what, maxDiffAtMost1: maxDiff <= 1, equalAtLeast99: equalFraction >= 0.99 }).toEqual({ what, maxDiffAtMost1: true, equalAtLeast99: true });
  if (exactHere) expect({ what, maxDiff, equalFraction }).toEqual({ what, maxDiff: 0, equalFraction: 1 });
}

/** Deterministic test images: noise (worst case), smooth gradients, hard edges, mixed per channel. */
function synthetic(width: number, height: number, seed: number): Uint8Array {
  let s = seed;
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 8) / 16777216;
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      const region = (x * 3) / width;
      out[o] = region < 1 ? Math.floor(rnd() * 256) : region < 2 ? Math.round(127.5 + 127.5 * Math.sin(x / 17 + y / 29)) : (x >> 3) % 2 === (y >> 3) % 2 ? 255 : 0;
      out[o + 1] = Math.floor(rnd() * 256);
      out[o + 2] = (x * 255) / Math.max(1, width - 1);
    }
  }
  return out;
}

describe("Pillow's resize, reproduced", () => {
  const cases: [number, number, number, number][] = [
    [640, 360, 384, 384], // the reference's own test size: down horizontally, up vertically
    [1920, 1080, 384, 384],
    [1280, 720, 384, 384],
    [320, 240, 384, 384], // upscale both ways
    [360, 640, 384, 384], // portrait
    [101, 37, 384, 384], // odd sizes, strong upscale
    [384, 500, 384, 384], // only the vertical pass
    [500, 384, 384, 384], // only the horizontal pass
    [640, 360, 96, 160], // non-square target
  ];

  test('BICUBIC on synthetic frames, downscales and upscales: the WebAssembly passes and the TypeScript ones', () => {
    const jobs = cases.map(([w, h, ow, oh], i) => ({ rgb: synthetic(w, h, i + 1), width: w, height: h, outWidth: ow, outHeight: oh }));
    pillowResize(jobs).forEach((ref, i) => {
      const j = jobs[i];
      const img = { width: j.width, height: j.height, channels: 3, data: j.rgb };
      expectReference(pilResize(img, j.outWidth, j.outHeight).data, ref.rgb, `${j.width}x${j.height} -> ${j.outWidth}x${j.outHeight}`);
      expectReference(pilResize(img, j.outWidth, j.outHeight, PIL_FILTERS.bicubic, false).data, ref.rgb, `${j.width}x${j.height} -> ${j.outWidth}x${j.outHeight} (TypeScript passes)`);
    });
  });

  test('one channel (the TypeScript passes) equals Pillow on mode L', () => {
    const rgb = synthetic(300, 200, 9);
    const grey = rgb.filter((_, i) => i % 3 === 0);
    const ours = pilResize({ width: 300, height: 200, channels: 1, data: grey }, 384, 384).data;
    // Pillow on an RGB image with equal channels resizes each the same way.
    const ref = pillowResize([{ rgb: Uint8Array.from([...grey].flatMap((v) => [v, v, v])), width: 300, height: 200, outWidth: 384, outHeight: 384 }])[0].rgb;
    expectReference(ours, ref.filter((_, i) => i % 3 === 0), 'one channel');
  });

  test('the committed WebAssembly is what pil-resize.wat assembles to (npm run build:wasm)', async () => {
    const bytes = await assemblePilResize();
    expect(bytesModule(bytes)).toBe(readFileSync(join(__dirname, '../../lib/preprocess/pil-resize-wasm-bytes.ts'), 'utf8'));
  });

  test("the other filters a processor config may name (LANCZOS, BILINEAR, BOX, HAMMING)", () => {
    const jobs = [PIL_FILTERS.lanczos, PIL_FILTERS.bilinear, PIL_FILTERS.box, PIL_FILTERS.hamming].flatMap((filter) => [
      { rgb: synthetic(640, 360, filter), width: 640, height: 360, outWidth: 384, outHeight: 384, filter },
      { rgb: synthetic(200, 150, filter), width: 200, height: 150, outWidth: 384, outHeight: 384, filter },
    ]);
    pillowResize(jobs).forEach((ref, i) => {
      const j = jobs[i];
      expectReference(pilResize({ width: j.width, height: j.height, channels: 3, data: j.rgb }, j.outWidth, j.outHeight, j.filter).data, ref.rgb, `filter ${j.filter} ${j.width}x${j.height}`);
    });
    expect(() => pilResize({ width: 2, height: 2, channels: 3, data: new Uint8Array(12) }, 4, 4, 0)).toThrow(/resample filter 0/);
    expect(() => pilResize({ width: 2, height: 2, channels: 3, data: new Uint8Array(11) }, 4, 4)).toThrow(/11 bytes, expected 2x2x3 = 12/);
  });
});

describe('frames decoded from videos, through the extractor, stored as PNG, into pixel values', () => {
  const cfg: ProcessorConstants = { imageSize: 384, mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711], rescaleFactor: 1 / 255, resample: 3 };
  const videos = { mandel640x360Mp4: RECIPES.mandel640x360Mp4, h264Mp4: RECIPES.h264Mp4, testsrc1280x720Mp4: RECIPES.testsrc1280x720Mp4, testsrc1920x1080Mp4: RECIPES.testsrc1920x1080Mp4, rotatedMandelMp4: DERIVED.rotatedMandelMp4 };

  test.each(Object.keys(videos) as (keyof typeof videos)[])('%s: stored frames and pixel values equal Pillow + numpy on ffmpeg\'s rgb24 frames', async (name) => {
    const file = (await videoFiles(videos))[name];
    const { ffmpeg, ffprobe } = resolveBinaries();
    const v = (await probeVideo(ffprobe, file)).video!;
    const samples = planSamples({ durationSeconds: v.durationSeconds!, frameCount: v.frameCount, frameRate: v.frameRate }, 2);
    const req = { ffmpeg, input: file, streamIndex: v.index, rotation: v.rotation, width: v.displayWidth, height: v.displayHeight, size: cfg.imageSize, format: 'png' as const, jpegQuality: 95 };
    const ours = await extractFrames({ ...req, samples, concurrency: 2 });
    expect(ours.frames).toHaveLength(2);

    // The reference decoder: ffmpeg's plain rgb24 output at the same times (autorotate on: the display orientation).
    const decoded = await Promise.all(
      samples.map(async (p) => (await runProcess(ffmpeg, ['-v', 'error', '-ss', p.seek.toFixed(6), '-i', file, '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'])).stdout),
    );
    decoded.forEach((rgb) => expect(rgb.length).toBe(v.displayWidth * v.displayHeight * 3));
    const refs = pillowResize(decoded.map((rgb) => ({ rgb, width: v.displayWidth, height: v.displayHeight, outWidth: 384, outHeight: 384, normalise: { rescale: cfg.rescaleFactor, mean: cfg.mean, std: cfg.std } })));

    for (let i = 0; i < 2; i++) {
      const stored = await sharp(ours.frames[i].data).raw().toBuffer({ resolveWithObject: true });
      expect(stored.info).toMatchObject({ format: 'raw', width: 384, height: 384, channels: 3 });
      expectReference(stored.data, refs[i].rgb, `${name} frame ${i}`);
    }
    const pixels = await framesToPixels(ours.frames.map((f) => f.data), cfg);
    const reference = new Float32Array([...refs[0].pixels!, ...refs[1].pixels!]);
    if (exactHere) expect(Buffer.from(pixels.buffer).equals(Buffer.from(reference.buffer))).toBe(true);
    else expect(Math.max(...pixels.map((p, k) => Math.abs(p - reference[k])))).toBeLessThanOrEqual((1 / 255 / Math.min(...cfg.std)) * 1.0001);
  }, 120_000);
});

describe('rescale and normalise', () => {
  test("the table is transformers' float32 steps: (float32(v * rescale) - float32(mean)) / float32(std)", () => {
    const t = normalisationTable({ mean: [0.5, 0.25, 0.1], std: [0.5, 0.2, 0.3], rescaleFactor: 0.00392156862745098 });
    const f = Math.fround;
    expect(t[0]).toBe(-1);
    expect(t[255]).toBe(1);
    expect(t[256 + 100]).toBe(f(f(f(100 * 0.00392156862745098) - f(0.25)) / f(0.2)));
    expect(t[512 + 7]).toBe(f(f(f(7 * 0.00392156862745098) - f(0.1)) / f(0.3)));
    expect(() => normalisationTable({ mean: [0.5], std: [0.5, 0.5, 0.5], rescaleFactor: 1 })).toThrow(/3 values/);
  });
});
