/**
 * Frames → pixel values, as the checkpoint's video processor computes them
 * (LlavaOnevisionVideoProcessor): RGB, Pillow's resize to image_size × image_size (skipped when the
 * Lambda already stored frames at that size, as it does by default), rescale by rescale_factor,
 * normalise with image_mean/image_std, CHW float32. The work is lib/preprocess's, shared with the
 * extraction Lambda and `longsight frames`; this module keeps the runtime's interface to it.
 */
import { decodeImageRgb, framesToPixelValues, normaliseRgb as normalise, toModelRgb, type ProcessorConstants } from '../../lib/preprocess';

/** The constants come from the model package (read from the checkpoint's processor config). */
export type PreprocessConfig = ProcessorConstants;

export class FrameDecodeError extends Error {
  constructor(readonly frameIndex: number, cause: string) {
    super(`frame ${frameIndex} could not be decoded as an image: ${cause}`);
    this.name = 'FrameDecodeError';
  }
}

/** Decodes one encoded frame to interleaved RGB bytes at image_size × image_size. */
export async function decodeFrameRgb(bytes: Buffer, imageSize: number, frameIndex = 0, resample = 3): Promise<Uint8Array> {
  try {
    return toModelRgb(await decodeImageRgb(bytes), { imageSize, resample });
  } catch (err) {
    throw new FrameDecodeError(frameIndex, (err as Error).message);
  }
}

/** HWC RGB bytes → normalised CHW floats, written into `out` at `offset`. */
export function normaliseRgb(rgb: Uint8Array, cfg: PreprocessConfig, out: Float32Array, offset = 0): void {
  normalise(rgb, cfg, out, offset);
}

/** Encoded frames → one [N, 3, S, S] float32 buffer; a frame that is not an image throws FrameDecodeError naming it (firstIndex + its position). */
export async function framesToPixels(frames: Buffer[], cfg: PreprocessConfig, firstIndex = 0): Promise<Float32Array> {
  return framesToPixelValues(frames, cfg, (i, e) => new FrameDecodeError(firstIndex + i, e.message));
}
