/**
 * Checkpoint tensors addressed by hub-layout name, validated against the shapes the config implies
 * before any output is written, and read one at a time as float32.
 */
import { CheckpointTensors } from '../safetensors/checkpoint';
import { CheckpointError } from './hf-config';
import { toLayout, type TensorLayout } from './tensor-names';

export class CheckpointWeights {
  /** Source bytes read so far (progress). */
  bytesRead = 0;

  constructor(
    readonly tensors: CheckpointTensors,
    readonly layout: TensorLayout,
    private readonly onRead: (name: string, bytes: number) => void = () => undefined,
  ) {}

  actualName(hubName: string): string {
    return toLayout(hubName, this.layout);
  }

  has(hubName: string): boolean {
    return this.tensors.has(this.actualName(hubName));
  }

  /** Throws naming the tensor when it is missing, not floating point, or shaped differently. */
  check(hubName: string, shape: number[]): void {
    const name = this.actualName(hubName);
    if (!this.tensors.has(name)) throw new CheckpointError(`missing tensor "${name}" in ${this.tensors.dir}`);
    const info = this.tensors.info(name);
    if (!['F32', 'F16', 'BF16', 'F64'].includes(info.dtype)) {
      throw new CheckpointError(`tensor "${name}" has dtype ${info.dtype}; expected F32, F16 or BF16`);
    }
    if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
      throw new CheckpointError(`tensor "${name}" has shape [${info.shape.join(', ')}] but the config implies [${shape.join(', ')}]`);
    }
  }

  read(hubName: string): Float32Array {
    const name = this.actualName(hubName);
    const info = this.tensors.info(name);
    const values = this.tensors.readFloat32(name);
    this.bytesRead += info.byteLength;
    this.onRead(name, info.byteLength);
    return values;
  }

  byteLength(hubName: string): number {
    return this.tensors.info(this.actualName(hubName)).byteLength;
  }
}
