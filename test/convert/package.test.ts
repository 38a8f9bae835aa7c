/**
 * The package loader (manifest schema, file checks) and the cached tiny-model builder.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ensureTinyModel, ensureTinyModelPackage } from '../../container/convert/tiny-model-package';
import { loadModelPackage, MANIFEST_FILE, ModelPackageManifestSchema } from '../../container/model/package-manifest';
import { makeTmp } from './helpers';

jest.setTimeout(180_000);

let tmp: string;
let pkgDir: string;
beforeAll(async () => {
  tmp = makeTmp('package');
  pkgDir = await ensureTinyModelPackage({ cacheDir: path.join(tmp, 'cache'), seed: 3 });
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function brokenCopy(edit: (dir: string) => void): string {
  const dir = path.join(tmp, `broken-${Math.random().toString(36).slice(2)}`);
  fs.cpSync(pkgDir, dir, { recursive: true });
  edit(dir);
  return dir;
}

it('caches by options: the same options give the same directory without rebuilding, other options another', async () => {
  const again = await ensureTinyModel({ cacheDir: path.join(tmp, 'cache'), seed: 3 });
  expect(again.packageDir).toBe(pkgDir);
  expect(fs.existsSync(path.join(again.checkpointDir, 'config.json'))).toBe(true);
  const mtime = fs.statSync(path.join(pkgDir, MANIFEST_FILE)).mtimeMs;
  await ensureTinyModelPackage({ cacheDir: path.join(tmp, 'cache'), seed: 3 });
  expect(fs.statSync(path.join(pkgDir, MANIFEST_FILE)).mtimeMs).toBe(mtime);
  const [a, b] = await Promise.all([
    ensureTinyModelPackage({ cacheDir: path.join(tmp, 'cache'), seed: 4 }),
    ensureTinyModelPackage({ cacheDir: path.join(tmp, 'cache'), seed: 4 }),
  ]);
  expect(a).toBe(b);
  expect(a).not.toBe(pkgDir);
  expect(fs.readdirSync(path.join(tmp, 'cache')).filter((f) => f.includes('.tmp-'))).toEqual([]);
});

it('loads a converted package with absolute paths', () => {
  const p = loadModelPackage(pkgDir);
  expect(ModelPackageManifestSchema.parse(p.manifest)).toEqual(p.manifest);
  expect(p.paths.decoder).toBe(path.join(path.resolve(pkgDir), 'decoder.onnx'));
});

it('explains a directory that is not a package', () => {
  expect(() => loadModelPackage(tmp)).toThrow(/no longsight-model\.json \(not a converted Longsight model; run `longsight convert`\)/);
});

it('names invalid manifest fields', () => {
  const dir = brokenCopy((d) => {
    const m = JSON.parse(fs.readFileSync(path.join(d, MANIFEST_FILE), 'utf8'));
    m.dtype = 'int4';
    delete m.text.headDim;
    fs.writeFileSync(path.join(d, MANIFEST_FILE), JSON.stringify(m));
  });
  expect(() => loadModelPackage(dir)).toThrow(/invalid manifest: .*dtype: .*text\.headDim/);
});

it('names a missing file and a truncated embedding matrix', () => {
  const noDecoder = brokenCopy((d) => fs.rmSync(path.join(d, 'decoder.onnx')));
  expect(() => loadModelPackage(noDecoder)).toThrow(/files\.decoder = decoder\.onnx is missing/);
  const truncated = brokenCopy((d) => fs.truncateSync(path.join(d, 'embed_tokens.bin'), 1000));
  expect(() => loadModelPackage(truncated)).toThrow(/embed_tokens\.bin: 1000 bytes, expected 38912000 \(\[152000, 64\] fp32\)/);
});
