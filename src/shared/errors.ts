import { GraphQLError } from 'graphql';

/** The closed set of error codes clients can rely on. */
export const ErrorCode = {
  BadUserInput: 'BAD_USER_INPUT',
  Unauthenticated: 'UNAUTHENTICATED',
  Forbidden: 'FORBIDDEN',
  NotFound: 'NOT_FOUND',
  SlowConsumer: 'SLOW_CONSUMER',
  RateLimited: 'RATE_LIMITED',
  SubscriptionLimit: 'SUBSCRIPTION_LIMIT',
  /** A list was cut to keep the response within MAX_RESPONSE_BYTES; `extensions.after` continues it. */
  ResponseTooLarge: 'RESPONSE_TOO_LARGE',
  /** A read passed its time budget (READ_TIMEOUT_MS) and was cancelled. */
  QueryTimeout: 'QUERY_TIMEOUT',
  /** The database cannot take writes right now (disk full, I/O error, corruption, locked too long); nothing was stored. */
  StorageUnavailable: 'STORAGE_UNAVAILABLE',
  /** The server is stopping; retry against another instance or later (live streams carry `after`). */
  ShuttingDown: 'SHUTTING_DOWN',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export function badUserInput(message: string, argument?: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: ErrorCode.BadUserInput, ...(argument ? { argument } : {}) } });
}

export function notFound(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: ErrorCode.NotFound } });
}

export function forbidden(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: ErrorCode.Forbidden } });
}

/**
 * A failure of the storage layer that a client can act on: a timeout, a refusal, the database being
 * unable to write. A GraphQLError with a code, so it reaches clients as it is (never masked); HTTP 503
 * where the whole request failed for it.
 */
export class StorageError extends GraphQLError {
  constructor(message: string, code: ErrorCode, extensions: Record<string, unknown> = {}) {
    const status = code === ErrorCode.StorageUnavailable ? 503 : undefined;
    super(message, { extensions: { code, ...extensions, ...(status ? { http: { status } } : {}) } });
  }
}
