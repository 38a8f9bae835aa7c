/**
 * Stored frames: encode (Lambda) and decode (worker, `longsight frames`) with sharp. PNG is the
 * default and lossless: the bytes the worker decodes are the bytes the resize produced. JPEG is an
 * explicit option (extraction.format = "jpeg"): about 5x smaller, but lossy (at q95 4:4:4 a few
 * levels per value, more on sharp edges), so the model no longer sees the reference's pixels.
 */
import sharp from 'sharp';
import type { Image8 } from './pil-resize';

export type FrameFormat = 'jpeg' | 'png';

export async function encodeFrame(rgb: Uint8Array, width: number, height: number, format: FrameFormat, jpegQuality = 95): Promise<Buffer> {
  const img = sharp(rgb, { raw: { width, height, channels: 3 } });
  // JPEG: 4:4:4 chroma, so colour edges keep the decoded frame's resolution.
  // PNG: lossless at any zlib level; 3 encodes a 384x384 frame in ~3.3 ms vs 4.4 ms at 6, for ~10% more bytes.
  return format === 'jpeg' ? img.jpeg({ quality: jpegQuality, chromaSubsampling: '4:4:4' }).toBuffer() : img.png({ compressionLevel: 3 }).toBuffer();
}

/**
 * Any image sharp reads → 8-bit RGB at its own size. Alpha is dropped and grey is replicated to
 * three channels, as PIL's convert("RGB") does.
 */
export async function decodeImageRgb(bytes: Buffer): Promise<Image8> {
  const { data, info } = await sharp(bytes, { failOn: 'error' }).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  const { width, height, channels } = info;
  if (channels === 3) return { width, height, channels: 3, data };
  const rgb = Buffer.allocUnsafe(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    for (let c = 0; c < 3; c++) rgb[p * 3 + c] = data[p * channels + Math.min(c, channels - 1)];
  }
  return { width, height, channels: 3, data: rgb };
}
