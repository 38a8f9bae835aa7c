/**
 * Frames → pixel values, as the checkpoint's video processor does (LlavaOnevisionVideoProcessor):
 * convert to RGB, resize to image_size×image_size (bicubic, PIL's a = −0.5 kernel = sharp's
 * 'cubic'), rescale by rescale_factor (1/255), normalise with image_mean/image_std, CHW float.
 * The constants come from the model package (read from the checkpoint's processor config).
 */
import sharp from 'sharp';

export interface PreprocessConfig {
  imageSize: number;
  mean: readonly [number, number, number] | readonly number[];
  std: readonly [number, number, number] | readonly number[];
  rescaleFactor: number;
  /** PIL resample filter id from the processor config (3 = bicubic, LLaVA-OneVision's); default 3. */
  resample?: number;
}

type SharpKernel = 'nearest' | 'linear' | 'cubic' | 'lanczos3';

/** PIL filter ids → sharp kernels: 0 NEAREST, 1 LANCZOS, 2 BILINEAR, 3 BICUBIC (Catmull-Rom, a = −0.5, = sharp's 'cubic'). */
export function sharpKernelFor(resample = 3): SharpKernel {
  const kernel = ({ 0: 'nearest', 1: 'lanczos3', 2: 'linear', 3: 'cubic' } as Record<number, SharpKernel>)[resample];
  if (!kernel) throw new Error(`unsupported processor resample filter ${resample} (supported PIL ids: 0 nearest, 1 lanczos, 2 bilinear, 3 bicubic)`);
  return kernel;
}

export class FrameDecodeError extends Error {
  constructor(readonly frameIndex: number, cause: string) {
    super(`frame ${frameIndex} could not be decoded as an image: ${cause}`);
    this.name = 'FrameDecodeError';
  }
}

/** Decodes one encoded frame to interleaved RGB bytes at image_size×image_size. */
export async function decodeFrameRgb(bytes: Buffer, imageSize: number, frameIndex = 0, kernel: SharpKernel = 'cubic'): Promise<Buffer> {
  try {
    let img = sharp(bytes, { failOn: 'error' });
    const meta = await img.metadata();
    img = img.removeAlpha().toColourspace('srgb');
    // The Lambda already writes frames at the model's resolution: no resampling then.
    if (meta.width !== imageSize || meta.height !== imageSize) {
      img = img.resize(imageSize, imageSize, { fit: 'fill', kernel });
    }
    const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
    if (info.channels === 3) return data;
    // Greyscale sources can come back with one channel: replicate, as PIL's convert("RGB") does.
    const out = Buffer.alloc(imageSize * imageSize * 3);
    for (let p = 0; p < imageSize * imageSize; p++) {
      for (let c = 0; c < 3; c++) out[p * 3 + c] = data[p * info.channels + Math.min(c, info.channels - 1)];
    }
    return out;
  } catch (err) {
    throw new FrameDecodeError(frameIndex, (err as Error).message);
  }
}

/** HWC RGB bytes → normalised CHW floats, written into `out` at `offset`. */
export function normaliseRgb(rgb: Uint8Array, cfg: PreprocessConfig, out: Float32Array, offset = 0): void {
  const plane = cfg.imageSize * cfg.imageSize;
  if (rgb.length !== plane * 3) throw new Error(`expected ${plane * 3} RGB bytes, got ${rgb.length}`);
  for (let c = 0; c < 3; c++) {
    const scale = cfg.rescaleFactor / cfg.std[c];
    const shift = cfg.mean[c] / cfg.std[c];
    const base = offset + c * plane;
    for (let p = 0; p < plane; p++) out[base + p] = rgb[p * 3 + c] * scale - shift;
  }
}

/** Encoded frames → one [N, 3, S, S] float32 buffer. */
export async function framesToPixels(frames: Buffer[], cfg: PreprocessConfig, firstIndex = 0): Promise<Float32Array> {
  const per = 3 * cfg.imageSize * cfg.imageSize;
  const out = new Float32Array(frames.length * per);
  const kernel = sharpKernelFor(cfg.resample);
  const rgbs = await Promise.all(frames.map((f, i) => decodeFrameRgb(f, cfg.imageSize, firstIndex + i, kernel)));
  rgbs.forEach((rgb, i) => normaliseRgb(rgb, cfg, out, i * per));
  return out;
}
