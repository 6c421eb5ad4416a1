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
