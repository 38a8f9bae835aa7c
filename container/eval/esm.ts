/**
 * Loads ES-module-only packages (hyparquet, vega, vega-lite: some use top-level await, which
 * require() cannot load) from this CommonJS project. The import() runs in a tiny CommonJS file
 * loaded by Node's own module loader, so it stays a real dynamic import under tsx, under plain
 * Node and inside Jest (whose module registry cannot import ES modules without
 * --experimental-vm-modules).
 */
import Module from 'node:module';
import { join } from 'node:path';

type NodeLoader = { _load(request: string, parent: null, isMain: boolean): (specifier: string) => Promise<unknown> };

let importer: ((specifier: string) => Promise<unknown>) | undefined;

export function importEsm<T>(specifier: string): Promise<T> {
  importer ??= (Module as unknown as NodeLoader)._load(join(__dirname, 'esm-import.cjs'), null, false);
  return importer(specifier) as Promise<T>;
}
