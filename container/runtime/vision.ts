/**
 * Vision encoding in batches: normalised pixels [N, 3, S, S] → projected frame features
 * [N, patches, hidden] (SigLIP + projector in one graph). The batch size bounds activation
 * memory; frames are independent, so batching changes nothing but speed.
 */
import * as ort from 'onnxruntime-node';
import { float32ToHalfBits, halfBitsToFloat32 } from './half';
import { runSession } from './session';

export class VisionRunner {
  readonly pixelType: 'float32' | 'float16';

  constructor(
    readonly session: ort.InferenceSession,
    readonly imageSize: number,
    readonly patches: number,
    readonly hidden: number,
  ) {
    const meta = session.inputMetadata.find((m) => m.name === 'pixel_values');
    if (!meta || !meta.isTensor) throw new Error(`vision graph has no tensor input "pixel_values" (inputs: ${session.inputNames.join(', ')})`);
    if (meta.type !== 'float32' && meta.type !== 'float16') throw new Error(`vision input pixel_values has type ${meta.type}, expected float32 or float16`);
    this.pixelType = meta.type;
  }

  /** Encodes `frames` frames from `pixels`; returns one [patches·hidden] float32 array per frame. */
  async encode(pixels: Float32Array, frames: number, batch: number, onBatch?: (done: number, total: number) => void): Promise<Float32Array[]> {
    const per = 3 * this.imageSize * this.imageSize;
    if (pixels.length !== frames * per) throw new Error(`pixel buffer holds ${pixels.length} values, expected ${frames}x3x${this.imageSize}x${this.imageSize}`);
    if (!Number.isInteger(batch) || batch < 1) throw new Error(`vision batch must be a positive integer, got ${batch}`);
    const out: Float32Array[] = [];
    const featurePer = this.patches * this.hidden;
    for (let start = 0; start < frames; start += batch) {
      const n = Math.min(batch, frames - start);
      const slice = pixels.subarray(start * per, (start + n) * per);
      const input = new ort.Tensor(this.pixelType, this.pixelType === 'float16' ? float32ToHalfBits(slice) : slice, [n, 3, this.imageSize, this.imageSize]);
      const result = await runSession(this.session, { pixel_values: input });
      const t = result.image_features as ort.Tensor | undefined;
      if (!t) throw new Error(`vision graph returned no "image_features" (outputs: ${Object.keys(result).join(', ')})`);
      if (t.dims[0] !== n || t.dims[1] !== this.patches || t.dims[2] !== this.hidden) {
        throw new Error(`vision graph returned [${t.dims.join(', ')}], expected [${n}, ${this.patches}, ${this.hidden}]`);
      }
      const data = t.type === 'float16' ? halfBitsToFloat32(t.data as Uint16Array) : (t.data as Float32Array);
      for (let f = 0; f < n; f++) out.push(data.slice(f * featurePer, (f + 1) * featurePer));
      onBatch?.(start + n, frames);
    }
    return out;
  }
}
