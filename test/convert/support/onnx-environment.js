/**
 * Jest environment for tests that run onnxruntime-node. Jest gives each test file its own V8
 * realm, but onnxruntime-node's native binding builds output tensors from the outer realm's typed
 * arrays, which then fail onnxruntime-common's `instanceof Float32Array` checks inside the test
 * realm ("A float32 tensor's data must be type of function Float32Array()"). Sharing the outer
 * realm's typed-array constructors makes both sides agree. Use with the docblock pragma
 * `@jest-environment ./test/convert/support/onnx-environment.js`.
 */
const { TestEnvironment } = require('jest-environment-node');

const SHARED = [
  'ArrayBuffer', 'SharedArrayBuffer', 'DataView',
  'Float32Array', 'Float64Array', 'Int8Array', 'Uint8Array', 'Uint8ClampedArray',
  'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array', 'BigInt64Array', 'BigUint64Array',
];

class OnnxEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of SHARED) if (globalThis[name]) this.global[name] = globalThis[name];
  }
}

module.exports = OnnxEnvironment;
