/**
 * Reference frame pooling and video token layout, float64, written from the definitions and
 * sharing nothing with container/model/: each frame's projected features [G·G, D] are resized with
 * PyTorch's `F.interpolate(mode="bilinear", align_corners=False)` expressed as two dense
 * interpolation matrices (Wy · X · Wxᵀ per channel); frames are pooled in order with the paper's
 * progressive schedule (first frame of each group of K at stride s_h, the others at s_l, pooled side
 * ceil(G/stride)); one image_newline follows the last frame (LLaVA-OneVision's video layout).
 */
import { mat, type Mat } from './math';

/** Row o of the matrix: the align_corners=False weights of output index o over the input indices. */
function interpolationMatrix(inSize: number, outSize: number): Float64Array[] {
  const rows: Float64Array[] = [];
  for (let o = 0; o < outSize; o++) {
    const row = new Float64Array(inSize);
    const src = Math.max(((o + 0.5) * inSize) / outSize - 0.5, 0); // half-pixel centres, negative coordinates clamp to 0
    const lo = Math.floor(src);
    const hi = Math.min(lo + 1, inSize - 1); // the last input index has no right neighbour
    row[lo] += 1 - (src - lo);
    row[hi] += src - lo;
    rows.push(row);
  }
  return rows;
}

/** One frame [grid·grid, D] → [side·side, D]. */
export function referenceBilinear(frame: Mat, grid: number, side: number): Mat {
  if (frame.rows !== grid * grid) throw new Error(`reference: frame has ${frame.rows} tokens, expected ${grid}x${grid}`);
  const w = interpolationMatrix(grid, side);
  const d = frame.cols;
  const out = mat(side * side, d);
  for (let oy = 0; oy < side; oy++) {
    for (let ox = 0; ox < side; ox++) {
      const o = (oy * side + ox) * d;
      for (let y = 0; y < grid; y++) {
        for (let x = 0; x < grid; x++) {
          const weight = w[oy][y] * w[ox][x];
          if (weight === 0) continue;
          const i = (y * grid + x) * d;
          for (let c = 0; c < d; c++) out.data[o + c] += weight * frame.data[i + c];
        }
      }
    }
  }
  return out;
}

/** The decoder's visual sequence: frames pooled by the schedule, in order, then image_newline. */
export function referenceVideoTokens(
  frames: Mat[],
  grid: number,
  schedule: { groupSize: number; strideHigh: number; strideLow: number },
  imageNewline: Float64Array,
): Mat {
  const pooled = frames.map((f, i) => referenceBilinear(f, grid, Math.ceil(grid / (i % schedule.groupSize === 0 ? schedule.strideHigh : schedule.strideLow))));
  const d = imageNewline.length;
  const rows = pooled.reduce((a, p) => a + p.rows, 0) + 1;
  const out = mat(rows, d);
  let offset = 0;
  for (const p of pooled) {
    if (p.cols !== d) throw new Error(`reference: frame width ${p.cols} != image_newline width ${d}`);
    out.data.set(p.data, offset);
    offset += p.data.length;
  }
  out.data.set(imageNewline, offset);
  return out;
}
