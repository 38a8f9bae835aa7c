/**
 * Broken or unsupported checkpoints fail before anything is written, with a message naming the
 * key, file or tensor at fault.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { convertCheckpoint } from '../../container/convert/convert';
import { MANIFEST_FILE } from '../../container/model/package-manifest';
import { CheckpointTensors } from '../../container/safetensors/checkpoint';
import { writeSafetensors, type TensorSpec, type WritableDtype } from '../../container/safetensors/writer';
import { generateTinyCheckpoint } from '../../container/testing/tiny-checkpoint';
import { makeTmp } from './helpers';

jest.setTimeout(180_000);

let tmp: string;
let hub: string; // tiny, hub layout, single file
let sharded: string; // tiny, model-prefixed layout, 2 shards
let n = 0;

beforeAll(() => {
  tmp = makeTmp('convert-errors');
  hub = path.join(tmp, 'hub');
  sharded = path.join(tmp, 'sharded');
  generateTinyCheckpoint(hub, { seed: 11 });
  generateTinyCheckpoint(sharded, { seed: 11, layout: 'model-prefixed', shards: 2 });
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A copy of a checkpoint directory to break. */
function copyOf(src: string): string {
  const dst = path.join(tmp, `case-${n++}`);
  fs.cpSync(src, dst, { recursive: true });
  return dst;
}

function editConfig(dir: string, edit: (c: any) => void): void {
  const file = path.join(dir, 'config.json');
  const c = JSON.parse(fs.readFileSync(file, 'utf8'));
  edit(c);
  fs.writeFileSync(file, JSON.stringify(c));
}

/** Rewrites model.safetensors through `transform` (drop or reshape tensors). */
function rewriteSingleFile(dir: string, transform: (specs: TensorSpec[]) => TensorSpec[]): void {
  const t = CheckpointTensors.open(dir);
  const values = new Map(t.names().map((name) => [name, t.readFloat32(name)]));
  const specs = transform(t.names().map((name) => ({ name, dtype: t.info(name).dtype as WritableDtype, shape: t.info(name).shape })));
  t.close();
  writeSafetensors(path.join(dir, 'model.safetensors'), specs, (s, start, count) => {
    const v = values.get(s.name) ?? new Float32Array(start + count);
    return v.length >= start + count ? v.subarray(start, start + count) : new Float32Array(count);
  });
}

async function expectFailure(dir: string, message: RegExp): Promise<void> {
  const out = path.join(tmp, `out-${n++}`);
  await expect(convertCheckpoint(dir, out)).rejects.toThrow(message);
  expect(fs.existsSync(path.join(out, MANIFEST_FILE))).toBe(false);
}

it('rejects another architecture, naming it', async () => {
  const dir = copyOf(hub);
  editConfig(dir, (c) => {
    c.architectures = ['LlavaForConditionalGeneration'];
  });
  await expectFailure(dir, /architectures is \["LlavaForConditionalGeneration"\]; only LlavaOnevisionForConditionalGeneration checkpoints are supported/);
});

it('rejects a non-Qwen2 language model and a wrong model_type, naming the key', async () => {
  const dir = copyOf(hub);
  editConfig(dir, (c) => {
    c.text_config.model_type = 'llama';
  });
  await expectFailure(dir, /text_config\.model_type must be "qwen2"/);
  editConfig(dir, (c) => {
    c.text_config.model_type = 'qwen2';
    c.model_type = 'llava_next';
  });
  await expectFailure(dir, /config\.json: model_type must be "llava_onevision"/);
});

it('rejects a config that is not JSON', async () => {
  const dir = copyOf(hub);
  fs.writeFileSync(path.join(dir, 'config.json'), '{"architectures": [');
  await expectFailure(dir, /config\.json: not valid JSON/);
});

it('names a missing tensor (hub layout)', async () => {
  const dir = copyOf(hub);
  rewriteSingleFile(dir, (specs) => specs.filter((s) => s.name !== 'language_model.model.layers.1.mlp.down_proj.weight'));
  await expectFailure(dir, /missing tensor "language_model\.model\.layers\.1\.mlp\.down_proj\.weight"/);
});

it('names a missing tensor by its model-prefixed name (sharded) — here the vision patch embedding', async () => {
  const dir = copyOf(sharded);
  const indexFile = path.join(dir, 'model.safetensors.index.json');
  const index = JSON.parse(fs.readFileSync(indexFile, 'utf8'));
  // Drop it from the index: the shard still holds it, but a checkpoint is what its index lists.
  delete index.weight_map['model.vision_tower.vision_model.embeddings.patch_embedding.weight'];
  fs.writeFileSync(indexFile, JSON.stringify(index));
  await expectFailure(dir, /missing tensor "model\.vision_tower\.vision_model\.embeddings\.patch_embedding\.weight"/);
});

it('names a tensor whose shape disagrees with the config', async () => {
  const dir = copyOf(hub);
  editConfig(dir, (c) => {
    c.text_config.intermediate_size = 96;
  });
  await expectFailure(dir, /tensor "language_model\.model\.layers\.0\.mlp\.gate_proj\.weight" has shape \[128, 64\] but the config implies \[96, 64\]/);
});

it('requires lm_head when embeddings are not tied', async () => {
  const dir = copyOf(hub);
  editConfig(dir, (c) => {
    c.text_config.tie_word_embeddings = false;
  });
  await expectFailure(dir, /missing tensor "language_model\.lm_head\.weight".*tie_word_embeddings is false/);
});

it('names the truncated shard and the first tensor past its end', async () => {
  const dir = copyOf(sharded);
  const shard = path.join(dir, 'model-00002-of-00002.safetensors');
  fs.truncateSync(shard, fs.statSync(shard).size - 100);
  await expectFailure(dir, /model-00002-of-00002\.safetensors: tensor "[^"]+" ends at byte \d+ of the data section but the file holds only \d+ data bytes \(truncated file\?\)/);
});

it('names a shard listed in the index that does not exist', async () => {
  const dir = copyOf(sharded);
  fs.rmSync(path.join(dir, 'model-00001-of-00002.safetensors'));
  await expectFailure(dir, /shard "model-00001-of-00002\.safetensors" listed in weight_map does not exist/);
});

it('rejects a safetensors header that is not JSON', async () => {
  const dir = copyOf(hub);
  const file = path.join(dir, 'model.safetensors');
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, Buffer.from('not json'), 0, 8, 8); // clobber the start of the JSON header
  fs.closeSync(fd);
  await expectFailure(dir, /model\.safetensors: the safetensors header is not valid JSON/);
});

it('rejects a header length larger than the file', async () => {
  const dir = copyOf(hub);
  const file = path.join(dir, 'model.safetensors');
  const fd = fs.openSync(file, 'r+');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(fs.statSync(file).size));
  fs.writeSync(fd, len, 0, 8, 0);
  fs.closeSync(fd);
  await expectFailure(dir, /model\.safetensors: header length \d+ does not fit the file/);
});

it('rejects an integer tensor where weights are expected', async () => {
  const dir = copyOf(hub);
  const file = path.join(dir, 'model.safetensors');
  // Relabel a 4-byte F32 tensor as I32: same byte size, so only the dtype check can catch it.
  const buf = fs.readFileSync(file);
  const hlen = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + hlen).toString('utf8'));
  header['language_model.model.norm.weight'].dtype = 'I32';
  let json = JSON.stringify(header);
  json = json.padEnd(hlen, ' ');
  expect(Buffer.byteLength(json)).toBe(hlen);
  buf.write(json, 8, 'utf8');
  fs.writeFileSync(file, buf);
  await expectFailure(dir, /tensor "language_model\.model\.norm\.weight" has dtype I32; expected F32, F16 or BF16/);
});

it('rejects a tokenizer whose <video> id disagrees with config.json', async () => {
  const dir = copyOf(hub);
  editConfig(dir, (c) => {
    c.video_token_index = 151648;
  });
  await expectFailure(dir, /token "<video>" has id 151647 but config\.json video_token_index is 151648/);
});

it('rejects a directory without safetensors', async () => {
  const dir = copyOf(hub);
  fs.rmSync(path.join(dir, 'model.safetensors'));
  await expectFailure(dir, /no model\.safetensors and no model\.safetensors\.index\.json/);
});

it('names a missing processor or tokenizer config file', async () => {
  const noProcessor = copyOf(hub);
  fs.rmSync(path.join(noProcessor, 'preprocessor_config.json'));
  await expectFailure(noProcessor, /preprocessor_config\.json is missing \(the processor's resize and normalisation constants are read from it\)/);
  const noTokenizerConfig = copyOf(hub);
  fs.rmSync(path.join(noTokenizerConfig, 'tokenizer_config.json'));
  await expectFailure(noTokenizerConfig, /tokenizer_config\.json is missing/);
});

it('rejects config values the package cannot represent, naming the key', async () => {
  const dir = copyOf(hub);
  editConfig(dir, (c) => {
    c.vision_feature_layer = [-2, -5, -8, -11, 6];
  });
  await expectFailure(dir, /vision_feature_layer must be a single layer index \(lists of layers are not supported\)/);
  editConfig(dir, (c) => {
    c.vision_feature_layer = -1;
    c.text_config.rope_scaling = { type: 'linear', factor: 2 };
  });
  await expectFailure(dir, /text_config\.rope_scaling must be null/);
  editConfig(dir, (c) => {
    c.text_config.rope_scaling = null;
    c.text_config.num_attention_heads = 8; // head dim 8: GroupQueryAttention's rotary needs a multiple of 16
    c.text_config.num_key_value_heads = 2;
  });
  await expectFailure(dir, /text head dim 8 is not a multiple of 16/);
});
