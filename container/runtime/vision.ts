/**
 * Vision encoding: normalised pixels [N, 3, S, S] → pooled frame tokens [N, side², hidden] (SigLIP +
 * projector + LLaVA-OneVision's bilinear pooling, one graph). The pooling matrix is an input, so
 * one run pools every frame of the batch to the same side: the engine batches frames by stride.
 * Only pooled tokens cross out of the runtime (256 frames at the paper's schedule: 15.6K tokens,
 * not 186K features).
 */
import * as ort from 'onnxruntime-node';
import { bilinearMatrix } from '../model/bilinear-resize';
import { float32ToHalfBits, halfBitsToFloat32 } from './half';
import { runSession, type RunAccounting } from './session';

export class VisionRunner {
  readonly pixelType: 'float32' | 'float16';
  private readonly poolWeights = new Map<number, ort.Tensor>();

  constructor(
    readonly session: ort.InferenceSession,
    readonly imageSize: number,
    readonly gridSide: number,
    readonly hidden: number,
  ) {
    const meta = session.inputMetadata.find((m) => m.name === 'pixel_values');
    if (!meta || !meta.isTensor) throw new Error(`vision graph has no tensor input "pixel_values" (inputs: ${session.inputNames.join(', ')})`);
    if (meta.type !== 'float32' && meta.type !== 'float16') throw new Error(`vision input pixel_values has type ${meta.type}, expected float32 or float16`);
    if (!session.inputNames.includes('pool_weights')) {
      throw new Error('vision graph has no input "pool_weights": the package predates in-graph pooling; convert the checkpoint again with this version (`longsight convert`)');
    }
    this.pixelType = meta.type;
  }

  /** The [side, grid] interpolation matrix input for a pooled side (stride 1 = the identity). */
  private poolWeightsFor(side: number): ort.Tensor {
    let t = this.poolWeights.get(side);
    if (!t) {
      t = new ort.Tensor('float32', bilinearMatrix(this.gridSide, side), [side, this.gridSide]);
      this.poolWeights.set(side, t);
    }
    return t;
  }

  /**
   * Encodes `frames` frames of `pixels` in one run and pools each to side×side tokens; returns
   * [frames·side², hidden] float32, frame-major, row-major within a frame.
   */
  async encode(pixels: Float32Array, frames: number, side: number, accounting?: RunAccounting): Promise<Float32Array> {
    const per = 3 * this.imageSize * this.imageSize;
    if (pixels.length !== frames * per) throw new Error(`pixel buffer holds ${pixels.length} values, expected ${frames}x3x${this.imageSize}x${this.imageSize}`);
    if (!Number.isInteger(side) || side < 1 || side > this.gridSide) throw new Error(`pooled side must be an integer in 1..${this.gridSide}, got ${side}`);
    const input = new ort.Tensor(this.pixelType, this.pixelType === 'float16' ? float32ToHalfBits(pixels) : pixels, [frames, 3, this.imageSize, this.imageSize]);
    const result = await runSession(this.session, { pixel_values: input, pool_weights: this.poolWeightsFor(side) }, ['image_tokens'], accounting);
    const t = result.image_tokens;
    if (t.dims[0] !== frames || t.dims[1] !== side * side || t.dims[2] !== this.hidden) {
      throw new Error(`vision graph returned [${t.dims.join(', ')}], expected [${frames}, ${side * side}, ${this.hidden}]`);
    }
    return t.type === 'float16' ? halfBitsToFloat32(t.data as Uint16Array) : (t.data as Float32Array);
  }
}
