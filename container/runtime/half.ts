/** fp16 ⇄ float32 for the runtime's tensors (fp16 packages), through the safetensors module's exact bulk conversions. */
import { float32ToHalfBytes, halfBytesToFloat32 } from '../safetensors/numeric';

export function float32ToHalfBits(values: Float32Array): Uint16Array {
  const bytes = float32ToHalfBytes(values);
  // Small Buffers live in Node's shared pool: copy those out, so the onnxruntime tensor owns its memory.
  const owned = bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.byteLength ? bytes.buffer : bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  return new Uint16Array(owned);
}

export function halfBitsToFloat32(bits: Uint16Array): Float32Array {
  return halfBytesToFloat32(new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength));
}
