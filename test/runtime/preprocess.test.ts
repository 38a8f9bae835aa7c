/**
 * Frames → pixel values, checked against a direct computation of the processor's formula
 * (pixel = (byte · rescale_factor − mean[c]) / std[c], CHW) on images we construct pixel by pixel.
 */
import sharp from 'sharp';
import { decodeFrameRgb, framesToPixels, FrameDecodeError, normaliseRgb, type PreprocessConfig } from '../../container/runtime/preprocess';

const S = 48;
// Deliberately not LLaVA-OneVision's 0.5/0.5, so channel mix-ups would show.
const cfg: PreprocessConfig = { imageSize: S, mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711], rescaleFactor: 1 / 255 };

function knownRgb(w: number, h: number): Buffer {
  const rgb = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 3;
      rgb[o] = (x * 5 + y) % 256;
      rgb[o + 1] = (y * 7 + 3) % 256;
      rgb[o + 2] = (x * y) % 256;
    }
  }
  return rgb;
}

describe('preprocess', () => {
  it('decodes a PNG at the model resolution without resampling and normalises per channel, CHW', async () => {
    const rgb = knownRgb(S, S);
    const png = await sharp(rgb, { raw: { width: S, height: S, channels: 3 } }).png().toBuffer();
    const pixels = await framesToPixels([png, png], cfg);
    expect(pixels.length).toBe(2 * 3 * S * S);
    let maxErr = 0;
    for (let f = 0; f < 2; f++) {
      for (let c = 0; c < 3; c++) {
        for (let y = 0; y < S; y++) {
          for (let x = 0; x < S; x++) {
            const byte = rgb[(y * S + x) * 3 + c];
            const expected = (byte * cfg.rescaleFactor - cfg.mean[c]) / cfg.std[c];
            const got = pixels[f * 3 * S * S + c * S * S + y * S + x];
            maxErr = Math.max(maxErr, Math.abs(got - expected));
          }
        }
      }
    }
    expect(maxErr).toBeLessThan(1e-5);
  });

  it('downsizes larger frames to imageSize x imageSize with half-pixel centres, as PIL does (linear ramps stay on the ramp)', async () => {
    // A horizontal ramp of 2S px reduced 2x: cubic convolution reproduces linear functions, so every
    // output pixel lies on the ramp at PIL's source coordinate (x + 0.5)·scale − 0.5.
    const w = S * 2;
    const rgb = Buffer.alloc(w * S * 3);
    for (let y = 0; y < S; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) rgb[(y * w + x) * 3 + c] = 20 + 2 * x;
    const png = await sharp(rgb, { raw: { width: w, height: S, channels: 3 } }).png().toBuffer();
    const out = await decodeFrameRgb(png, S);
    expect(out.length).toBe(S * S * 3);
    for (let x = 1; x < S - 1; x++) {
      const src = (x + 0.5) * (w / S) - 0.5;
      expect(Math.abs(out[(10 * S + x) * 3] - (20 + 2 * src))).toBeLessThanOrEqual(1);
    }
  });

  it('turns greyscale and RGBA inputs into three channels', async () => {
    const grey = await sharp(Buffer.alloc(S * S, 77), { raw: { width: S, height: S, channels: 1 } }).png().toBuffer();
    const rgba = await sharp(Buffer.alloc(S * S * 4, 200), { raw: { width: S, height: S, channels: 4 } }).png().toBuffer();
    const g = await decodeFrameRgb(grey, S);
    const a = await decodeFrameRgb(rgba, S);
    expect(g.length).toBe(S * S * 3);
    expect([...new Set(g)]).toEqual([77]);
    expect([...new Set(a)]).toEqual([200]);
  });

  it('names the frame that is not an image', async () => {
    const png = await sharp(knownRgb(S, S), { raw: { width: S, height: S, channels: 3 } }).jpeg().toBuffer();
    await expect(framesToPixels([png, Buffer.from('not an image')], cfg)).rejects.toThrow(FrameDecodeError);
    await expect(framesToPixels([png, Buffer.from('not an image')], cfg)).rejects.toThrow(/frame 1/);
  });

  it('names a resample filter it cannot reproduce (only when a frame needs resizing)', async () => {
    const big = await sharp(knownRgb(2 * S, S), { raw: { width: 2 * S, height: S, channels: 3 } }).png().toBuffer();
    await expect(decodeFrameRgb(big, S, 4, 7)).rejects.toThrow(/frame 4 .*resample filter 7/);
    const exact = await sharp(knownRgb(S, S), { raw: { width: S, height: S, channels: 3 } }).png().toBuffer();
    expect((await decodeFrameRgb(exact, S, 0, 7)).length).toBe(S * S * 3);
  });

  it('rejects RGB data of the wrong size', () => {
    expect(() => normaliseRgb(new Uint8Array(10), cfg, new Float32Array(3 * S * S))).toThrow(/expected/);
  });
});
