import { GraphQLError } from 'graphql';
import { maskError as yogaMaskError, type YogaLogger } from 'graphql-yoga';

/**
 * Errors we raise on purpose (GraphQLErrors with a code) reach the client as they are. Anything else is
 * logged in full on the server and reaches the client as "Unexpected error." with no stack, SQL or message.
 */
export function createErrorMasker(logger: YogaLogger) {
  return (error: unknown, message: string): Error => {
    const original = error instanceof GraphQLError ? error.originalError : error;
    if (!(original instanceof GraphQLError) && original !== undefined) logger.error('Unexpected error', original);
    return yogaMaskError(error, message, false);
  };
}
