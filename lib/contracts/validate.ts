/**
 * Validation at a boundary: parse with a zod schema and, on failure, throw one readable error
 * that names every offending field by its dotted path ("environments.prod.gpu.maxWorkers: ...").
 */
import { z } from 'zod';

export class ContractError extends Error {
  constructor(
    readonly what: string,
    readonly issues: { path: string; message: string }[],
  ) {
    super(`invalid ${what}: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`);
    this.name = 'ContractError';
  }
}

/** Joins a zod issue path the way a person writes it: a.b[2].c */
export function formatPath(base: string, path: readonly PropertyKey[]): string {
  let out = base;
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out;
}

export function issuesOf(error: z.ZodError, base = ''): { path: string; message: string }[] {
  return error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      const keys = (issue as { keys: string[] }).keys;
      return {
        path: formatPath(base, [...issue.path, keys[0] ?? '']),
        message: `unknown key${keys.length > 1 ? 's' : ''} ${keys.map((k) => JSON.stringify(k)).join(', ')}`,
      };
    }
    return { path: formatPath(base, issue.path), message: issue.message };
  });
}

/** Parses `value` with `schema`; throws a ContractError naming each bad field. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, what: string, base = ''): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new ContractError(what, issuesOf(result.error, base));
  return result.data;
}
