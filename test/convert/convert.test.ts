/**
 * @jest-environment ./test/convert/support/onnx-environment.js
 */
/**
 * Generator → converter → onnxruntime-node, on tiny checkpoints in both tensor-name layouts,
 * single-file and sharded, F32/F16/BF16 sources, fp32 and fp16 packages.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { Tokenizer } from '@huggingface/tokenizers';
import { convertCheckpoint } from '../../container/convert/convert';
import { loadModelPackage, type ModelPackage } from '../../container/model/package-manifest';
import { decodeModel } from '../../container/onnx/proto';
import { CheckpointTensors } from '../../container/safetensors/checkpoint';
import { halfBytesToFloat32 } from '../../container/safetensors/numeric';
import { generateTinyCheckpoint, type TinyCheckpointOptions } from '../../container/testing/tiny-checkpoint';
import { decoderStep, fromTensor, makeTmp, relErr, seededRandom } from './helpers';

jest.setTimeout(360_000);

let tmp: string;
beforeAll(() => {
  tmp = makeTmp('convert');
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function build(name: string, ckpt: TinyCheckpointOptions, dtype: 'fp32' | 'fp16' = 'fp32'): Promise<{ ckptDir: string; pkg: ModelPackage }> {
  const ckptDir = path.join(tmp, `${name}-ckpt`);
  generateTinyCheckpoint(ckptDir, ckpt);
  await convertCheckpoint(ckptDir, path.join(tmp, `${name}-pkg`), { dtype });
  return { ckptDir, pkg: loadModelPackage(path.join(tmp, `${name}-pkg`)) };
}

async function runVision(pkg: ModelPackage, frames: number, seed = 3): Promise<ort.Tensor> {
  const s = await ort.InferenceSession.create(pkg.paths.vision);
  const S = pkg.manifest.vision.imageSize;
  const G = pkg.manifest.vision.gridSize;
  const identity = Float32Array.from({ length: G * G }, (_, i) => (i % (G + 1) === 0 ? 1 : 0)); // stride 1: no pooling
  const r = await s.run({ pixel_values: new ort.Tensor('float32', seededRandom(seed, frames * 3 * S * S), [frames, 3, S, S]), pool_weights: new ort.Tensor('float32', identity, [G, G]) });
  return r.image_tokens as ort.Tensor;
}

describe('hub layout, single model.safetensors, F32 → fp32 package', () => {
  let ckptDir: string;
  let pkg: ModelPackage;
  beforeAll(async () => {
    ({ ckptDir, pkg } = await build('hub-f32', { seed: 1 }));
  });

  it('writes the documented files and a manifest read from the checkpoint', () => {
    const m = pkg.manifest;
    expect(m).toMatchObject({
      format: 'longsight-model',
      version: 2,
      modelId: 'longsight/tiny-llava-onevision-tiny',
      dtype: 'fp32',
      source: { architecture: 'LlavaOnevisionForConditionalGeneration', tensorLayout: 'hub', sourceDtype: 'F32' },
      vision: { imageSize: 384, patchSize: 14, gridSize: 27, numPatches: 729, hiddenSize: 32, numLayers: 2, layersUsed: 2, projectedSize: 64, imageMean: [0.5, 0.5, 0.5], imageStd: [0.5, 0.5, 0.5], resample: 3, resizeTo: { height: 384, width: 384 } },
      text: { hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 16, intermediateSize: 128, vocabSize: 152000, ropeTheta: 1000000, maxPositionEmbeddings: 32768, rmsNormEps: 1e-6, tieWordEmbeddings: true },
      tokens: { image: 151646, video: 151647, imStart: 151644, imEnd: 151645, pad: 151643 },
    });
    expect(m.vision.rescaleFactor).toBeCloseTo(1 / 255, 12);
    expect(m.tokens.eos).toEqual([151645, 151643]);
    expect(m.source.checkpointSha256).toMatch(/^[0-9a-f]{64}$/);
    for (const f of ['vision.onnx', 'vision.onnx.data', 'decoder.onnx', 'decoder.onnx.data', 'embed_tokens.bin', 'image_newline.bin', 'tokenizer.json', 'tokenizer_config.json']) {
      expect(fs.existsSync(path.join(pkg.dir, f))).toBe(true);
    }
  });

  it('stores embed_tokens and image_newline as raw little-endian rows equal to the checkpoint tensors', () => {
    const t = CheckpointTensors.open(ckptDir);
    try {
      const embed = t.readFloat32('language_model.model.embed_tokens.weight');
      const raw = fs.readFileSync(pkg.paths.embedTokens);
      const stored = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
      expect(stored.length).toBe(152000 * 64);
      expect(Array.from(stored.subarray(151647 * 64, 151648 * 64))).toEqual(Array.from(embed.subarray(151647 * 64, 151648 * 64)));
      expect(relErr(stored, embed)).toBe(0);
      const nl = fs.readFileSync(pkg.paths.imageNewline);
      expect(Array.from(new Float32Array(nl.buffer, nl.byteOffset, 64))).toEqual(Array.from(t.readFloat32('image_newline')));
    } finally {
      t.close();
    }
  });

  it('writes ONNX protobufs with external data, the contrib opset, and GroupQueryAttention inside the token Loop as documented', () => {
    const model = decodeModel(fs.readFileSync(pkg.paths.decoder));
    expect(model.opsetImport).toEqual(expect.arrayContaining([expect.objectContaining({ domain: 'com.microsoft', version: 1 })]));
    const loops = model.graph.node.filter((n: any) => n.opType === 'Loop');
    expect(loops).toHaveLength(1);
    const body = loops[0].attribute.find((a: any) => a.name === 'body').g;
    // Loop inputs: trip count, condition, the carried token embedding, 2 layers x (key, value), logits.
    expect(loops[0].input).toHaveLength(3 + 2 * 2 + 1);
    expect(body.input).toHaveLength(3 + 2 * 2 + 1);
    expect(body.output).toHaveLength(2 + 2 * 2 + 1 + 2); // cond, embedding, cache, logits; scan: token, log-prob
    expect(model.graph.node.filter((n: any) => n.opType === 'GroupQueryAttention')).toHaveLength(0);
    const gqa = body.node.filter((n: any) => n.opType === 'GroupQueryAttention');
    expect(gqa).toHaveLength(2);
    const attrs = Object.fromEntries(gqa[0].attribute.map((a: any) => [a.name, a.i ?? a.f]));
    expect(attrs).toMatchObject({ num_heads: 4, kv_num_heads: 2, do_rotary: 1, rotary_interleaved: 0 });
    expect(attrs.scale).toBeCloseTo(0.25, 7);
    const external = model.graph.initializer.filter((t: any) => t.dataLocation === 1);
    expect(external.length).toBeGreaterThan(5);
    expect(external[0].externalData.map((e: any) => e.key)).toEqual(['location', 'offset', 'length']);
    expect(external[0].externalData[0].value).toBe('decoder.onnx.data');
    expect(model.graph.input.map((i: any) => i.name)).toEqual(['inputs_embeds', 'past_key_0', 'past_value_0', 'past_key_1', 'past_value_1', 'cos_cache', 'sin_cache', 'max_new_tokens', 'prefill_chunk', 'stop_ids', 'temperature', 'seed']);
    expect(model.graph.output.map((o: any) => o.name)).toEqual(['tokens', 'token_logprobs', 'logits', 'present_key_0', 'present_value_0', 'present_key_1', 'present_value_1']);
    // Tied checkpoint: one [vocab, hidden] matrix is both the loop's embedding table and lm_head (Gemm transB).
    const table = model.graph.initializer.filter((t: any) => t.name === 'embed_tokens.weight' || t.name === 'lm_head.weight');
    expect(table.map((t: any) => [t.name, t.dims])).toEqual([['embed_tokens.weight', [152000, 64]]]);
  });

  it('vision.onnx maps pixel_values [N,3,384,384] (+ identity pool_weights) to image_tokens [N,729,hidden], frames independent', async () => {
    const two = await runVision(pkg, 2);
    expect(two.dims).toEqual([2, 729, 64]);
    expect(two.type).toBe('float32');
    const data = two.data as Float32Array;
    expect(data.every(Number.isFinite)).toBe(true);
    // Frame 0 alone gives the same features as frame 0 of the batch (no cross-frame mixing).
    const one = await runVision(pkg, 1);
    expect(relErr(one.data as Float32Array, data.subarray(0, 729 * 64))).toBeLessThan(1e-5);
  });

  it('decoder.onnx: last-position logits, growing cache, chunked prefill and decode steps equal one shot', async () => {
    const s = await ort.InferenceSession.create(pkg.paths.decoder);
    const m = pkg.manifest;
    const T = 11;
    const embeds = seededRandom(5, T * 64, 0.5);
    const full = await decoderStep(s, m, embeds);
    expect(full.outputs.logits.dims).toEqual([1, 152000]);
    expect(full.outputs.logits.type).toBe('float32');
    expect(full.outputs.present_key_1.dims).toEqual([1, 2, T, 16]);

    let cache = undefined;
    let logits: Float32Array = new Float32Array();
    for (const [a, b] of [[0, 5], [5, 9], [9, 10], [10, 11]]) {
      const r = await decoderStep(s, m, embeds.slice(a * 64, b * 64), cache);
      expect(r.cache.tensors.present_value_0.dims).toEqual([1, 2, b, 16]);
      cache = r.cache;
      logits = r.logits;
    }
    expect(relErr(logits, full.logits)).toBeLessThan(1e-5);
    // The last-position logits are those of a prefill of exactly that prefix.
    const prefix = await decoderStep(s, m, embeds.slice(0, 9 * 64));
    const chunked = await decoderStep(s, m, embeds.slice(0, 5 * 64));
    const more = await decoderStep(s, m, embeds.slice(5 * 64, 9 * 64), chunked.cache);
    expect(relErr(more.logits, prefix.logits)).toBeLessThan(1e-5);
    expect(relErr(prefix.logits, full.logits)).toBeGreaterThan(1e-3); // different positions, different logits
  });

  it('copies a tokenizer.json that Hugging Face tokenizers load, with <image>/<video> and the Qwen chat tokens', () => {
    const tok = new Tokenizer(JSON.parse(fs.readFileSync(pkg.paths.tokenizer, 'utf8')), JSON.parse(fs.readFileSync(pkg.paths.tokenizerConfig, 'utf8')));
    const ids = tok.encode('<|im_start|>user\n<video>\nWhat happens?<|im_end|>\n<|im_start|>assistant\n').ids;
    expect(ids[0]).toBe(151644);
    expect(ids).toContain(151647);
    expect(ids).toContain(151645);
    expect(tok.encode('<image>').ids).toEqual([151646]);
    expect(tok.decode(tok.encode('Hello world').ids)).toBe('Hello world');
  });
});

describe('same weights, other layouts and source dtypes', () => {
  it('model-prefixed names in 3 shards (BF16) convert to the same graphs as the hub layout in one file', async () => {
    const a = await build('hub-bf16', { seed: 2, dtype: 'BF16' });
    const b = await build('prefixed-bf16', { seed: 2, dtype: 'BF16', layout: 'model-prefixed', shards: 3 });
    expect(fs.existsSync(path.join(b.ckptDir, 'model.safetensors.index.json'))).toBe(true);
    expect(fs.readdirSync(b.ckptDir).filter((f) => /^model-0000\d-of-00003\.safetensors$/.test(f))).toHaveLength(3);
    expect(b.pkg.manifest.source.tensorLayout).toBe('model-prefixed');
    expect(b.pkg.manifest.source.sourceDtype).toBe('BF16');
    expect(b.pkg.manifest.source.checkpointSha256).not.toBe(a.pkg.manifest.source.checkpointSha256);
    const va = await runVision(a.pkg, 1);
    const vb = await runVision(b.pkg, 1);
    expect(Array.from(vb.data as Float32Array)).toEqual(Array.from(va.data as Float32Array));
    const embeds = seededRandom(9, 4 * 64, 0.5);
    const la = await decoderStep(await ort.InferenceSession.create(a.pkg.paths.decoder), a.pkg.manifest, embeds);
    const lb = await decoderStep(await ort.InferenceSession.create(b.pkg.paths.decoder), b.pkg.manifest, embeds);
    expect(Array.from(lb.logits)).toEqual(Array.from(la.logits));
  });

  it('an untied lm_head (F16 source, 2 shards) converts to an fp16 package whose I/O is fp16 except pixels, features and logits', async () => {
    const { ckptDir, pkg } = await build('untied-f16', { seed: 4, dtype: 'F16', shards: 2, tieWordEmbeddings: false }, 'fp16');
    const t = CheckpointTensors.open(ckptDir);
    expect(t.has('language_model.lm_head.weight')).toBe(true);
    t.close();
    const m = pkg.manifest;
    expect(m.dtype).toBe('fp16');
    expect(m.text.tieWordEmbeddings).toBe(false);
    expect(fs.statSync(pkg.paths.embedTokens).size).toBe(152000 * 64 * 2);
    expect(halfBytesToFloat32(fs.readFileSync(pkg.paths.imageNewline)).every(Number.isFinite)).toBe(true);

    const dec = await ort.InferenceSession.create(pkg.paths.decoder);
    const types = Object.fromEntries(dec.inputMetadata.map((i) => [i.name, i.isTensor ? i.type : '?']));
    expect(types).toMatchObject({ inputs_embeds: 'float16', cos_cache: 'float16', sin_cache: 'float16', past_key_0: 'float16', max_new_tokens: 'int64', prefill_chunk: 'int64', stop_ids: 'int64', temperature: 'float32', seed: 'int64' });
    // Untied: the loop's embedding table and lm_head are two [vocab, hidden] fp16 matrices.
    const inits = decodeModel(fs.readFileSync(pkg.paths.decoder)).graph.initializer.filter((x: any) => x.name === 'embed_tokens.weight' || x.name === 'lm_head.weight');
    expect(inits.map((x: any) => [x.name, x.dims, x.dataType])).toEqual([['embed_tokens.weight', [152000, 64], 10], ['lm_head.weight', [152000, 64], 10]]);
    const embeds = seededRandom(6, 6 * 64, 0.5);
    const r16 = await decoderStep(dec, m, embeds);
    expect(r16.outputs.logits.type).toBe('float32');
    expect(r16.outputs.present_key_0.type).toBe('float16');

    // Against an fp32 conversion of the same checkpoint (the float64 reference check lives in the numerics test).
    await convertCheckpoint(ckptDir, path.join(tmp, 'untied-f16-as-fp32'), { dtype: 'fp32' });
    const p32 = loadModelPackage(path.join(tmp, 'untied-f16-as-fp32'));
    const r32 = await decoderStep(await ort.InferenceSession.create(p32.paths.decoder), p32.manifest, embeds);
    expect(relErr(r16.logits, r32.logits)).toBeLessThan(1e-2);
    const v16 = await runVision(pkg, 1);
    const v32 = await runVision(p32, 1);
    expect(v16.type).toBe('float32');
    expect(relErr(fromTensor(v16), fromTensor(v32))).toBeLessThan(1e-2);
  });

  it('vision_feature_layer −2 runs one layer fewer and leaves the last layer out of vision.onnx', async () => {
    const { pkg } = await build('layer-2', { seed: 5, preset: 'tiny', vision: { numLayers: 3 }, visionFeatureLayer: -2 });
    expect(pkg.manifest.vision).toMatchObject({ numLayers: 3, layersUsed: 2 });
    const names = decodeModel(fs.readFileSync(pkg.paths.vision)).graph.initializer.map((t: any) => t.name as string);
    expect(names).toContain('layers.1.mlp.fc2.weight');
    expect(names.some((n: string) => n.startsWith('layers.2.'))).toBe(false);
    expect((await runVision(pkg, 1)).dims).toEqual([1, 729, 64]);
  });
});
