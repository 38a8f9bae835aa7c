/**
 * Jest's node environment with the host realm's typed-array constructors. onnxruntime-node builds
 * output tensors from typed arrays made in the host realm and checks them with `instanceof` against
 * the constructors of the realm it was loaded in (Jest's sandbox): without sharing them every
 * session.run fails with "A float32 tensor's data must be type of function Float32Array()".
 * Used by the worker/e2e tests through a `@jest-environment` docblock.
 */
const { TestEnvironment } = require('jest-environment-node');

const SHARED = ['ArrayBuffer', 'SharedArrayBuffer', 'DataView', 'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array'];

class OrtEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of SHARED) this.global[name] = globalThis[name];
  }
}

module.exports = OrtEnvironment;
