/**
 * Rescale and normalise, as the reference processor computes them (transformers'
 * image_transforms.rescale then .normalize on a uint8 HWC array): v·rescale_factor in float64,
 * stored as float32; then (x − mean) / std in float32 with mean and std cast to float32. Each step
 * rounds to float32 here too (Math.fround), so the values are the reference's bit for bit. A byte
 * has 256 values: the whole computation is a 256-entry table per channel.
 */

/** The processor constants the model was trained with (read from the checkpoint's preprocessor config). */
export interface ProcessorConstants {
  /** Frames are resized to imageSize × imageSize (LLaVA-OneVision's video path: no aspect ratio kept). */
  imageSize: number;
  mean: readonly number[];
  std: readonly number[];
  rescaleFactor: number;
  /** PIL resample filter id (3 = BICUBIC, LLaVA-OneVision's); default 3. */
  resample?: number;
}

/**
 * llava-hf/llava-onevision-qwen2-*-ov-hf's preprocessor_config.json (SigLIP's): 384×384, BICUBIC,
 * 1/255, mean = std = 0.5. What `longsight frames` uses when no model package is given.
 */
export const LLAVA_ONEVISION_PROCESSOR: ProcessorConstants = {
  imageSize: 384,
  mean: [0.5, 0.5, 0.5],
  std: [0.5, 0.5, 0.5],
  rescaleFactor: 0.00392156862745098,
  resample: 3,
};

/** table[c·256 + v] = the normalised value of byte v in channel c. */
export function normalisationTable(cfg: Pick<ProcessorConstants, 'mean' | 'std' | 'rescaleFactor'>): Float32Array {
  if (cfg.mean.length !== 3 || cfg.std.length !== 3) throw new Error(`mean and std must have 3 values (RGB), got ${cfg.mean.length} and ${cfg.std.length}`);
  const f = Math.fround;
  const table = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    const mean = f(cfg.mean[c]);
    const std = f(cfg.std[c]);
    for (let v = 0; v < 256; v++) table[c * 256 + v] = f(f(f(v * cfg.rescaleFactor) - mean) / std);
  }
  return table;
}

/** HWC RGB bytes (size × size) → normalised CHW floats, written into `out` at `offset`. */
export function normaliseRgb(rgb: Uint8Array, cfg: ProcessorConstants, out: Float32Array, offset = 0, table = normalisationTable(cfg)): void {
  const plane = cfg.imageSize * cfg.imageSize;
  if (rgb.length !== plane * 3) throw new Error(`expected ${plane * 3} RGB bytes (${cfg.imageSize}x${cfg.imageSize}x3), got ${rgb.length}`);
  for (let c = 0; c < 3; c++) {
    const base = offset + c * plane;
    const t = c * 256;
    for (let p = 0, i = c; p < plane; p++, i += 3) out[base + p] = table[t + rgb[i]];
  }
}
