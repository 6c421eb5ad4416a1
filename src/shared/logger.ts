import { createRequire } from 'node:module';
import { join } from 'node:path';
import pino from 'pino';
import { packageRoot } from './package-root.js';

/** One level of a logger: a message, or an object of fields and a message (pino's calling convention). */
export interface LogFn {
  (message: string): void;
  (fields: object, message?: string): void;
}

/**
 * What auditql logs through: a pino logger fits (the server creates one), as do most structured loggers.
 * Declared here rather than taken from pino so that an app's own compiler settings never have to read
 * pino's type declarations to type-check auditql's.
 */
export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}

/**
 * What an error may put in a log line: never the values a statement was run with (entry data, meta, ip,
 * user agent, secrets), only what identifies the failure. TypeORM's QueryFailedError carries `parameters`
 * and the driver error; both are left out, the SQL text (placeholders only) stays.
 */
export function serializeError(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { message: String(error) };
  const { name, message, stack } = error;
  const code = (error as { code?: unknown }).code;
  const query = (error as { query?: unknown }).query;
  return { type: name, message, stack, ...(code !== undefined ? { code } : {}), ...(typeof query === 'string' ? { query } : {}) };
}

function prettyAvailable(): boolean {
  try {
    createRequire(join(packageRoot(), 'package.json')).resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}

/**
 * The server's structured log: JSON lines by default (what log shippers read), human-readable lines when
 * `pretty` is asked for and pino-pretty is installed (a development dependency). Credentials never reach
 * it: request headers are not logged, and errors go through `serializeError`.
 */
export function createLogger(options: { level?: string; pretty?: boolean } = {}): Logger {
  const pretty = options.pretty && prettyAvailable();
  return pino({
    level: options.level ?? 'info',
    base: undefined,
    serializers: { err: serializeError, error: serializeError },
    redact: { paths: ['authorization', 'apiKey', '*.authorization', '*.apiKey', 'headers', '*.headers', 'parameters', '*.parameters'], remove: true },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } } : {}),
  });
}

/** A logger that drops everything (tests, embedded use with logging off). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
