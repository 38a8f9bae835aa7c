/**
 * Structured JSON logs (one object per line on stderr), as CloudWatch Logs Insights expects from
 * the Lambda and the worker. LONGSIGHT_LOG_LEVEL (debug|info|warn|error|silent) sets the floor.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel | 'silent', number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

function floor(fixed?: LogLevel | 'silent'): number {
  const level = (fixed ?? process.env.LONGSIGHT_LOG_LEVEL ?? 'info') as LogLevel | 'silent';
  return ORDER[level] ?? ORDER.info;
}

function serializable(value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message, stack: value.stack };
  return value;
}

/**
 * A logger writing one JSON object per line to `sink` (stderr by default). `level` fixes its floor
 * (e.g. a log file that records info lines whatever the console's LONGSIGHT_LOG_LEVEL); otherwise
 * LONGSIGHT_LOG_LEVEL sets it at each line.
 */
export function createLogger(base: Record<string, unknown> = {}, sink: (line: string) => void = (l) => process.stderr.write(l + '\n'), level?: LogLevel | 'silent'): Logger {
  const emit = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[lvl] < floor(level)) return;
    const record: Record<string, unknown> = { time: new Date().toISOString(), level: lvl, msg, ...base };
    for (const [k, v] of Object.entries(fields ?? {})) record[k] = serializable(v);
    sink(JSON.stringify(record));
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger({ ...base, ...fields }, sink, level),
  };
}
