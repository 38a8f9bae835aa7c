/**
 * @jest-environment ./test/convert/support/onnx-environment.js
 */
/**
 * `longsight frames`: writes the frames, timestamps.json and pixel_values.npy, and that tensor is
 * exactly what the worker's engine receives for the same video: the real extraction handler on the
 * embedded servers, the real worker loop loading the frames from S3, the real engine (tiny model);
 * the engine's input is captured at the AnswerEngine seam and turned into pixels with the call the
 * engine makes (framesToPixels with the package's processor constants).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../container/cli/main';
import { processorConstants } from '../../container/cli/commands/frames';
import { ensureSampleVideo } from '../../container/local/sample-video';
import type { AnswerEngine } from '../../container/runtime/engine';
import { framesToPixels } from '../../container/runtime/preprocess';
import { createExtractHandler } from '../../lambda/extract-frames/handler';
import { linspaceIndices } from '../../lambda/extract-frames/frame-sampler';
import { ExtractRuntimeConfigSchema } from '../../lib/contracts';
import { createLogger } from '../../lib/log';
import { pillowPython } from '../support/pillow';
import { inProcessWorker, waitStatus } from '../worker/support/harness';
import { tinyModelDir } from '../worker/support/tiny-model';
import { startRig, type Rig } from './support/stack';

jest.setTimeout(180_000);

let rig: Rig;
let out: string;
beforeAll(async () => {
  rig = await startRig();
  out = mkdtempSync(join(tmpdir(), 'longsight-frames-'));
});
afterAll(async () => {
  await rig?.stop();
  rmSync(out, { recursive: true, force: true });
});

/** Reads a .npy written by us: header fields and the float32 data. */
function readNpy(file: string): { descr: string; shape: number[]; data: Float32Array } {
  const b = readFileSync(file);
  expect(b.subarray(0, 6).toString('latin1')).toBe('\x93NUMPY');
  const len = b.readUInt16LE(8);
  const header = b.subarray(10, 10 + len).toString('latin1');
  expect((10 + len) % 64).toBe(0);
  const shape = /'shape': \(([^)]*)\)/.exec(header)![1].split(',').filter((s) => s.trim()).map(Number);
  const body = b.subarray(10 + len);
  return { descr: /'descr': '([^']+)'/.exec(header)![1], shape, data: new Float32Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.length)) };
}

test('frames --frames 8: 8 PNGs, timestamps.json, pixel_values.npy [8,3,384,384] — the same tensor as the worker engine\'s input for that video', async () => {
  const video = await ensureSampleVideo(join(process.cwd(), '.cache')); // `longsight run`'s sample: 8 s of 640x360 at 25 fps
  const model = await tinyModelDir();
  const printed: string[] = [];
  const code = await main(['node', 'longsight', 'frames', video, '--frames', '8', '--out', out, '--model', model, '--json'], { out: (s) => printed.push(s), err: (s) => printed.push(s) });
  expect(code).toBe(0);
  expect(JSON.parse(printed[printed.length - 1])).toMatchObject({ frames: 8, shape: [8, 3, 384, 384], format: 'png' });
  expect(readdirSync(out).sort()).toEqual([...[...Array(8).keys()].map((i) => `frame-${String(i).padStart(5, '0')}.png`), 'pixel_values.npy', 'timestamps.json']);
  const timestamps = JSON.parse(readFileSync(join(out, 'timestamps.json'), 'utf8'));
  expect(timestamps).toEqual(linspaceIndices(200, 8).map((i) => i / 25));
  const npy = readNpy(join(out, 'pixel_values.npy'));
  expect(npy).toMatchObject({ descr: '<f4', shape: [8, 3, 384, 384] });
  // numpy itself reads it.
  expect(execFileSync(pillowPython(), ['-c', `import numpy; a = numpy.load(${JSON.stringify(join(out, 'pixel_values.npy'))}); print(a.shape, a.dtype)`]).toString().trim()).toBe('(8, 3, 384, 384) float32');

  // The pipeline on the same video: Lambda handler → S3 → worker → engine, with the engine's input captured.
  const r = rig.local.resources;
  let engineInput: Buffer[] | undefined;
  const spy: AnswerEngine = {
    modelId: rig.engine.modelId,
    answer: (input) => {
      engineInput = input.frames;
      return rig.engine.answer(input);
    },
    close: () => rig.engine.close(),
  };
  const handler = createExtractHandler({
    clients: rig.local.clients,
    config: ExtractRuntimeConfigSchema.parse({ extraction: { frames: 8 }, inference: { maxNewTokens: 2 }, questions: ['What is shown?'] }),
    jobsTable: r.jobsTable,
    queueUrl: r.queueUrl,
    logger: createLogger({ service: 'test-extract' }, () => undefined),
  });
  const obj = await rig.upload(video, 'samples/sample.mp4');
  const res = await handler(rig.event(obj));
  const jobId = (res.results[0] as { jobId: string }).jobId;
  const worker = inProcessWorker(rig.local.clients, r, spy);
  try {
    const job = await waitStatus(rig.local.clients, r, jobId, ['DONE'], 120_000);
    expect(job.frames?.count).toBe(8);
  } finally {
    await worker.stop();
  }
  expect(engineInput).toHaveLength(8);
  const workerPixels = await framesToPixels(engineInput!, processorConstants(model).constants);
  expect(workerPixels.length).toBe(npy.data.length);
  expect(Buffer.from(workerPixels.buffer).equals(Buffer.from(npy.data.buffer))).toBe(true);
  // And the frames differ from one another: equal tensors are not a constant picture.
  expect(npy.data[0]).not.toBe(npy.data[3 * 384 * 384 * 7 + 5000]);
});

test('frames: a missing video is "not found" (exit 3), a file that is not a video fails with the reason (exit 1)', async () => {
  const err: string[] = [];
  const io = { out: () => undefined, err: (s: string) => err.push(s) };
  expect(await main(['node', 'longsight', 'frames', join(out, 'nope.mp4')], io)).toBe(3);
  expect(err.pop()).toMatch(/video not found/);
  expect(await main(['node', 'longsight', 'frames', join(out, 'timestamps.json'), '--out', join(out, 'x')], io)).toBe(1);
  expect(err.pop()).toMatch(/timestamps\.json: /);
  expect(await main(['node', 'longsight', 'frames', join(out, 'timestamps.json'), '--frames', '0'], io)).toBe(2);
});
