/** Session options, the CUDA availability check and the out-of-memory mapping. */
import { OutOfMemoryError } from '../../container/runtime/engine';
import { asOutOfMemory, checkCudaAvailable, ExecutionProviderError, nativeBindingDir, sessionOptions } from '../../container/runtime/session';
import * as fs from 'node:fs';
import * as path from 'node:path';

describe('sessions', () => {
  it('uses the CPU EP by default and passes threads through', () => {
    expect(sessionOptions({ executionProvider: 'cpu', threads: 3 })).toMatchObject({ executionProviders: ['cpu'], intraOpNumThreads: 3 });
    expect(sessionOptions({ executionProvider: 'cpu', threads: 0 }).intraOpNumThreads).toBeUndefined();
    expect(sessionOptions({ executionProvider: 'cuda', threads: 0, deviceId: 1 }).executionProviders).toEqual([{ name: 'cuda', deviceId: 1 }]);
  });

  it('names the missing CUDA provider library when CUDA is not installed', () => {
    const installed = fs.existsSync(path.join(nativeBindingDir(), 'libonnxruntime_providers_cuda.so'));
    if (installed) {
      // A machine with the CUDA binaries: the check must pass.
      expect(() => checkCudaAvailable()).not.toThrow();
    } else {
      expect(() => checkCudaAvailable()).toThrow(ExecutionProviderError);
      expect(() => checkCudaAvailable()).toThrow(/(libonnxruntime_providers_cuda\.so.*missing|no CUDA support)/);
    }
  });

  it('maps onnxruntime allocation failures to OutOfMemoryError and leaves other errors alone', () => {
    expect(asOutOfMemory(new Error('Failed to allocate memory for requested buffer of size 123'))).toBeInstanceOf(OutOfMemoryError);
    expect(asOutOfMemory(new Error('CUDA failure 2: out of memory'))).toBeInstanceOf(OutOfMemoryError);
    expect(asOutOfMemory(new Error('std::bad_alloc'))).toBeInstanceOf(OutOfMemoryError);
    expect(asOutOfMemory(new Error('Got invalid dimensions for input: seqlens_k'))).toBeUndefined();
  });
});
