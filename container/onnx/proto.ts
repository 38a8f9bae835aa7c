/**
 * The ONNX protobuf messages, loaded by protobufjs from our copy of the official schema subset
 * (onnx.proto next to this file). Encoding goes through protobufjs, not a hand-rolled writer.
 */
import * as path from 'node:path';
import * as fs from 'node:fs';
import * as protobuf from 'protobufjs';

let root: protobuf.Root | undefined;

function schemaPath(): string {
  // Next to this module when run from source (tsx, ts-jest); next to the sources when compiled to dist/.
  const candidates = [path.join(__dirname, 'onnx.proto'), path.resolve(__dirname, '../../../container/onnx/onnx.proto')];
  const found = candidates.find((p) => fs.existsSync(p));
  if (!found) throw new Error(`onnx.proto not found (looked in ${candidates.join(', ')})`);
  return found;
}

export function onnxRoot(): protobuf.Root {
  if (!root) root = protobuf.loadSync(schemaPath());
  return root;
}

export function onnxType(name: 'ModelProto' | 'GraphProto' | 'TensorProto' | 'NodeProto'): protobuf.Type {
  return onnxRoot().lookupType(`onnx.${name}`);
}

/** Encodes a plain-object ModelProto (as `ModelProto.fromObject` accepts it) to bytes. */
export function encodeModel(model: Record<string, unknown>): Uint8Array {
  const T = onnxType('ModelProto');
  const err = T.verify(model);
  if (err) throw new Error(`invalid ONNX ModelProto: ${err}`);
  return T.encode(T.fromObject(model)).finish();
}

/** Decodes ONNX bytes back to a plain object (tests inspect what we wrote). */
export function decodeModel(bytes: Uint8Array): Record<string, any> {
  const T = onnxType('ModelProto');
  return T.toObject(T.decode(bytes), { longs: Number, bytes: Buffer, defaults: false }) as Record<string, any>;
}
