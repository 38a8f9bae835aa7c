/**
 * A query's result as both engines return it (DuckDB locally, Athena deployed): named, typed
 * columns and rows of plain JSON values, printed as an aligned table, JSON lines or CSV.
 */

export interface QueryColumn {
  name: string;
  /** The engine's type name, lower case (bigint, varchar, double, array, …). */
  type: string;
}

export interface QueryResult {
  columns: QueryColumn[];
  rows: unknown[][];
}

/** A SQL statement the engine refused or could not run: its message is the engine's own. */
export class QueryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QueryError';
  }
}

const INTEGER_TYPES = /^(tinyint|smallint|integer|int|bigint|hugeint|utinyint|usmallint|uinteger|ubigint|uhugeint)$/;

/** An engine's text for a number column, as a JS number when exact (else kept as text). */
export function numberOrText(type: string, v: string): number | string {
  const n = Number(v);
  if (!Number.isFinite(n)) return v;
  if (INTEGER_TYPES.test(type) && !Number.isSafeInteger(n)) return v;
  return n;
}

export function isNumericType(type: string): boolean {
  return INTEGER_TYPES.test(type) || /^(double|float|real|decimal)(\(.*\))?$/.test(type);
}

function cellText(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

/** Columns padded to their widest cell; numbers right-aligned; long cells cut to `maxWidth`. */
export function formatTable(r: QueryResult, maxWidth = 60): string {
  const cut = (s: string) => (s.length > maxWidth ? `${s.slice(0, maxWidth - 1)}…` : s).replace(/\s+/g, ' ');
  const cells = r.rows.map((row) => row.map((v) => cut(cellText(v))));
  const widths = r.columns.map((c, i) => Math.max(c.name.length, ...cells.map((row) => row[i].length)));
  const numeric = r.columns.map((c) => isNumericType(c.type));
  const line = (values: string[]) => values.map((v, i) => (numeric[i] ? v.padStart(widths[i]) : v.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(r.columns.map((c) => c.name)), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line), `(${r.rows.length} row${r.rows.length === 1 ? '' : 's'})`].join('\n');
}

/** One JSON object per row. */
export function formatJsonLines(r: QueryResult): string {
  return r.rows.map((row) => JSON.stringify(Object.fromEntries(r.columns.map((c, i) => [c.name, row[i] ?? null])))).join('\n');
}

/** RFC 4180: a header line, fields quoted when they hold a comma, quote or line break. */
export function formatCsv(r: QueryResult): string {
  const field = (v: unknown) => {
    const s = cellText(v);
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [r.columns.map((c) => field(c.name)).join(','), ...r.rows.map((row) => row.map(field).join(','))].join('\n');
}
