/** Encoded frames → the vision tower's input: [N, 3, S, S] float32, exactly as the reference processor computes it. */
import { decodeImageRgb } from './frame-image';
import { normalisationTable, normaliseRgb, type ProcessorConstants } from './normalise';
import { PIL_FILTERS, pilResize, type Image8 } from './pil-resize';

/** An RGB image at the model's size: as it is when it already has that size, else resized as Pillow does. */
export function toModelRgb(img: Image8, cfg: Pick<ProcessorConstants, 'imageSize' | 'resample'>): Uint8Array {
  if (img.width === cfg.imageSize && img.height === cfg.imageSize) return img.data;
  return pilResize(img, cfg.imageSize, cfg.imageSize, cfg.resample ?? PIL_FILTERS.bicubic).data;
}

/**
 * Decodes each frame (any image sharp reads), resizes it when it is not imageSize × imageSize and
 * normalises it. `onBadFrame` turns a frame that is not an image into the caller's error.
 */
export async function framesToPixelValues(frames: readonly Buffer[], cfg: ProcessorConstants, onBadFrame: (index: number, cause: Error) => Error = (i, e) => e): Promise<Float32Array> {
  const per = 3 * cfg.imageSize * cfg.imageSize;
  const out = new Float32Array(frames.length * per);
  const table = normalisationTable(cfg);
  await Promise.all(
    frames.map(async (bytes, i) => {
      let img: Image8;
      try {
        img = await decodeImageRgb(bytes);
      } catch (e) {
        throw onBadFrame(i, e as Error);
      }
      normaliseRgb(toModelRgb(img, cfg), cfg, out, i * per, table);
    }),
  );
  return out;
}
