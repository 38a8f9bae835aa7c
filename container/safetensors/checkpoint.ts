/**
 * The tensors of a Hugging Face checkpoint directory as one name → tensor map, whether saved as
 * a single `model.safetensors` or sharded `model-0000x-of-0000y.safetensors` files listed by
 * `model.safetensors.index.json` (`{ metadata: { total_size }, weight_map: { name: shardFile } }`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SafetensorsError, SafetensorsFile, TensorInfo } from './reader';

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

export class CheckpointTensors {
  private constructor(
    readonly dir: string,
    readonly files: SafetensorsFile[],
    private readonly byName: Map<string, SafetensorsFile>,
  ) {}

  static open(dir: string): CheckpointTensors {
    const indexPath = path.join(dir, INDEX_FILE);
    const singlePath = path.join(dir, SINGLE_FILE);
    if (fs.existsSync(indexPath)) return CheckpointTensors.openSharded(dir, indexPath);
    if (fs.existsSync(singlePath)) {
      const f = SafetensorsFile.open(singlePath);
      return new CheckpointTensors(dir, [f], new Map([...f.tensors.keys()].map((n) => [n, f])));
    }
    throw new SafetensorsError(`${dir}: no ${SINGLE_FILE} and no ${INDEX_FILE} (not a safetensors checkpoint directory)`);
  }

  private static openSharded(dir: string, indexPath: string): CheckpointTensors {
    let index: { weight_map?: Record<string, string> };
    try {
      index = JSON.parse(fs.readFileSync(indexPath, 'utf8'));
    } catch (err) {
      throw new SafetensorsError(`${indexPath}: not valid JSON (${(err as Error).message})`);
    }
    const weightMap = index.weight_map;
    if (!weightMap || typeof weightMap !== 'object') throw new SafetensorsError(`${indexPath}: missing "weight_map"`);
    const shardNames = [...new Set(Object.values(weightMap))].sort();
    const files: SafetensorsFile[] = [];
    const opened = new Map<string, SafetensorsFile>();
    try {
      for (const shard of shardNames) {
        if (shard.includes('/') || shard.includes('\\')) throw new SafetensorsError(`${indexPath}: shard name "${shard}" must be a plain file name`);
        const p = path.join(dir, shard);
        if (!fs.existsSync(p)) throw new SafetensorsError(`${indexPath}: shard "${shard}" listed in weight_map does not exist`);
        const f = SafetensorsFile.open(p);
        files.push(f);
        opened.set(shard, f);
      }
      const byName = new Map<string, SafetensorsFile>();
      for (const [name, shard] of Object.entries(weightMap)) {
        const f = opened.get(shard)!;
        if (!f.tensors.has(name)) throw new SafetensorsError(`${indexPath}: tensor "${name}" is mapped to shard "${shard}" but that shard does not contain it`);
        byName.set(name, f);
      }
      return new CheckpointTensors(dir, files, byName);
    } catch (err) {
      for (const f of files) f.close();
      throw err;
    }
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  info(name: string): TensorInfo {
    const f = this.byName.get(name);
    if (!f) throw new SafetensorsError(`${this.dir}: checkpoint has no tensor "${name}"`);
    return f.info(name);
  }

  readFloat32(name: string): Float32Array {
    this.info(name);
    return this.byName.get(name)!.readFloat32(name);
  }

  readBytes(name: string): Buffer {
    this.info(name);
    return this.byName.get(name)!.readBytes(name);
  }

  close(): void {
    for (const f of this.files) f.close();
  }
}
