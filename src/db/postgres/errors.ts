/**
 * PostgreSQL failures sorted by what a client can do about them. SQLSTATE classes:
 * https://www.postgresql.org/docs/current/errcodes-appendix.html
 */

/** The statement ran past `statement_timeout` (or was cancelled). */
export const QUERY_CANCELED = '57014';

/** Worth running the whole transaction again: serialization failure, deadlock. */
const RETRY = new Set(['40001', '40P01']);

/**
 * The database cannot serve or store right now, as opposed to a mistake in one statement: connection
 * exceptions (08…), insufficient resources (53…: disk full 53100, out of memory 53200, too many
 * connections 53300), operator intervention (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot
 * connect now), system errors (58…: I/O), data corruption (XX001, XX002), and a read-only server (25006:
 * a standby, or default_transaction_read_only).
 */
const STORAGE_CLASSES = /^(08|53|58)/;
const STORAGE_CODES = new Set(['57P01', '57P02', '57P03', 'XX001', 'XX002', '25006']);
/** Node-level failures of the connection itself. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
/** node-postgres reports a lost connection by message only. */
const LOST = /Connection terminated|connection timeout|Client has encountered a connection error|terminating connection|Connection is not established/i;

export function sqlstateOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  const cause = (error as { driverError?: { code?: unknown } } | null)?.driverError?.code;
  return typeof cause === 'string' ? cause : '';
}

/** The code to report for a storage failure, or undefined when `error` is not one. */
export function storageFailure(error: unknown): string | undefined {
  const code = sqlstateOf(error);
  if (STORAGE_CLASSES.test(code) || STORAGE_CODES.has(code) || NETWORK_CODES.has(code)) return code;
  const message = (error as { message?: unknown } | null)?.message;
  if (!code && typeof message === 'string' && LOST.test(message)) return 'CONNECTION_LOST';
  return undefined;
}

export function isRetryable(error: unknown): boolean {
  return RETRY.has(sqlstateOf(error));
}
