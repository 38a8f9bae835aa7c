/**
 * @jest-environment ./test/convert/support/onnx-environment.js
 */
/**
 * Both mechanisms through the real engine on the tiny converted checkpoint: every combination of
 * {extension on/off} × {pooling stock/progressive} × frames in {8, 32, 64, 256} runs end to end
 * (the 256-frame job with the paper's defaults among them). Each run must report the visual token
 * count of the pooling formula and s = L_test / L_v; and the extension must change the model's
 * output exactly when s > 1 (bit-identical logits when s ≤ 1, different ones when s > 1).
 */
import sharp from 'sharp';
import { DEFAULT_SETTINGS, InferenceSettingsSchema, PAPER_POOLING, STOCK_POOLING, questionId, type PoolingSchedule } from '../../lib/contracts';
import { createOnnxEngine, type OnnxEngine } from '../../container/runtime/onnx-engine';
import { visualTokenCount } from '../../container/model/progressive-pool';
import { tinyPackage } from '../runtime/fixtures';

jest.setTimeout(600_000);

const FRAME_COUNTS = [8, 32, 64, 256];
const POOLINGS: [string, PoolingSchedule][] = [
  ['stock', STOCK_POOLING],
  ['progressive', PAPER_POOLING],
];
const L_V = DEFAULT_SETTINGS.rope.visualContextWindow; // 6272: the paper's default
const question = { id: questionId('What happens in this video?'), text: 'What happens in this video?' };

async function makeFrames(n: number): Promise<Buffer[]> {
  // Small distinct frames (the engine resizes to 384 as the processor does).
  const side = 48;
  return Promise.all(
    Array.from({ length: n }, (_, f) => {
      const rgb = Buffer.alloc(side * side * 3);
      for (let i = 0; i < side * side; i++) {
        rgb[i * 3] = (i * 7 + f * 13) % 256;
        rgb[i * 3 + 1] = (i * 3 + f * 29) % 256;
        rgb[i * 3 + 2] = (i + f * 71) % 256;
      }
      return sharp(rgb, { raw: { width: side, height: side, channels: 3 } }).png().toBuffer();
    }),
  );
}

describe('visual context window extension × progressive pooling × frames, end to end on the tiny checkpoint', () => {
  let engine: OnnxEngine;
  let frames: Buffer[];
  let firstLogits: Float32Array | undefined;

  beforeAll(async () => {
    const fx = await tinyPackage({ preset: 'tiny' });
    engine = await createOnnxEngine({
      modelDir: fx.packageDir,
      executionProvider: 'cpu',
      threads: 2,
      visionBatch: 16,
      onLogits: ({ logits }) => {
        if (!firstLogits) firstLogits = Float32Array.from(logits);
      },
    });
    frames = await makeFrames(Math.max(...FRAME_COUNTS));
  });
  afterAll(() => engine?.close());

  async function run(n: number, pooling: PoolingSchedule, extension: boolean) {
    firstLogits = undefined;
    const settings = InferenceSettingsSchema.parse({
      ...DEFAULT_SETTINGS,
      frames: n,
      pooling,
      rope: { ...DEFAULT_SETTINGS.rope, mode: extension ? 'visual-yarn' : 'off' },
      maxNewTokens: 2,
      prefillChunk: 4096,
      decodeLoop: 'host', // the logits hook sees every step only in the host loop
    });
    const result = await engine.answer({ frames: frames.slice(0, n), questions: [question], settings });
    return { result, logits: firstLogits! };
  }

  for (const n of FRAME_COUNTS) {
    for (const [name, pooling] of POOLINGS) {
      it(`${n} frames, ${name} pooling: extension on and off`, async () => {
        const expectedTokens = visualTokenCount(n, 27, pooling);
        const on = await run(n, pooling, true);
        const off = await run(n, pooling, false);
        for (const { result } of [on, off]) {
          expect(result.framesUsed).toBe(n);
          expect(result.visualTokens).toBe(expectedTokens);
          expect(result.pooling).toEqual(pooling);
          expect(result.answers).toHaveLength(1);
          expect(result.answers[0].generatedTokens).toBeGreaterThan(0);
          expect(result.answers[0].promptTokens).toBeGreaterThan(expectedTokens);
        }
        const s = expectedTokens / L_V;
        expect(off.result.ropeScale).toBe(1);
        expect(on.result.ropeMode).toBe('visual-yarn');
        if (s <= 1) {
          // No change when s ≤ 1: the stock tables, bit for bit, so the same logits.
          expect(on.result.ropeScale).toBe(1);
          expect(Array.from(on.logits)).toEqual(Array.from(off.logits));
        } else {
          expect(on.result.ropeScale).toBeCloseTo(s, 12);
          let maxDiff = 0;
          for (let i = 0; i < on.logits.length; i++) maxDiff = Math.max(maxDiff, Math.abs(on.logits[i] - off.logits[i]));
          expect(maxDiff).toBeGreaterThan(1e-6);
        }
      });
    }
  }
});
