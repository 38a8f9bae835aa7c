/** File lookups shared by the benchmark loaders. */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DatasetError } from './types';

export function isFile(p: string): boolean {
  return existsSync(p) && statSync(p).isFile();
}

/** The first of `candidates` that is a file, or undefined. */
export function firstFile(candidates: readonly string[]): string | undefined {
  return candidates.find(isFile);
}

/** The `.parquet` files directly in `dir`, sorted (HF splits: test-00000-of-00001.parquet, …). */
export function parquetFiles(dir: string): string[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return [];
  return readdirSync(dir).filter((f) => f.endsWith('.parquet')).sort().map((f) => join(dir, f));
}

export function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new DatasetError(`${file}: not valid JSON (${(e as Error).message})`);
  }
}

/** A string field of a row, or a DatasetError naming the row and the field. */
export function str(row: Record<string, unknown>, key: string, where: string): string {
  const v = row[key];
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  throw new DatasetError(`${where}: field "${key}" is ${v === undefined ? 'missing' : `not a string (${JSON.stringify(v)})`}`);
}

export function strings(row: Record<string, unknown>, key: string, where: string): string[] {
  const v = row[key];
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  throw new DatasetError(`${where}: field "${key}" is ${v === undefined ? 'missing' : 'not a list of strings'}`);
}
