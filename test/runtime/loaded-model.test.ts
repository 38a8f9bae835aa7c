/**
 * @jest-environment ./test/convert/support/onnx-environment.js
 */
/** Loading a package: a graph that fails to load must not leave the other session open. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadModel } from '../../container/runtime/loaded-model';
import { tinyPackage } from './fixtures';

jest.setTimeout(360_000);

it('releases the vision session when the decoder graph cannot be loaded, and names the failure', async () => {
  const fx = await tinyPackage({ preset: 'tiny' });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'longsight-loaded-model-'));
  try {
    fs.cpSync(fx.packageDir, dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'decoder.onnx'), 'not an onnx model');
    const created: ort.InferenceSession[] = [];
    const original = ort.InferenceSession.create.bind(ort.InferenceSession) as (path: string, options?: ort.InferenceSession.SessionOptions) => Promise<ort.InferenceSession>;
    const create = jest.spyOn(ort.InferenceSession, 'create').mockImplementation((async (file: string, options?: ort.InferenceSession.SessionOptions) => {
      const s = await original(file, options);
      created.push(s);
      return s;
    }) as typeof ort.InferenceSession.create);
    try {
      await expect(loadModel(dir, { executionProvider: 'cpu', threads: 1 })).rejects.toThrow(/decoder\.onnx|protobuf|parse/i);
    } finally {
      create.mockRestore();
    }
    expect(created).toHaveLength(1); // the vision session opened...
    await expect(created[0].release()).rejects.toThrow(); // ...and was released by loadModel (a second release fails)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
