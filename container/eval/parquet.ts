/** Reads a Parquet file's rows as plain objects with hyparquet (a maintained pure-JS reader). */
import { importEsm } from './esm';

type Hyparquet = {
  asyncBufferFromFile(file: string): Promise<unknown>;
  parquetReadObjects(options: { file: unknown; columns?: string[]; rowFormat?: 'object' }): Promise<Record<string, unknown>[]>;
};

export async function readParquetRows(file: string, columns?: string[]): Promise<Record<string, unknown>[]> {
  const hp = await importEsm<Hyparquet>('hyparquet');
  const buffer = await hp.asyncBufferFromFile(file);
  try {
    return await hp.parquetReadObjects({ file: buffer, columns });
  } catch (e) {
    throw new Error(`${file}: not a readable Parquet file (${(e as Error).message})`);
  }
}
