/** fp16 ⇄ float32 for the runtime's tensors (fp16 packages), via the safetensors module's exact conversions. */
import { floatToHalf, halfToFloat } from '../safetensors/numeric';

export const halfBitsToFloat = halfToFloat;

export function float32ToHalfBits(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = floatToHalf(values[i]);
  return out;
}

export function halfBitsToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = halfToFloat(bits[i]);
  return out;
}
