import type { IncomingMessage } from 'node:http';
import { createYoga, createLogger, type YogaServerInstance } from 'graphql-yoga';
import { schema } from '../schema/index.js';
import { buildContext, type GraphQLContext, type ServerDeps } from './context.js';
import { createErrorMasker } from './errors.js';
import { useDatabaseHealth } from './health.js';
import { useInputErrorCodes } from './input-errors.js';
import { useAuditContext } from './audit-context.plugin.js';

/** What the Node HTTP server and the WebSocket adapter hand to yoga next to the request. */
export interface ServerContext {
  req?: IncomingMessage;
  socketAddress?: string;
}

export type AuditYoga = YogaServerInstance<ServerContext, GraphQLContext>;

export interface YogaOptions {
  /** @default true */
  graphiql?: boolean;
  logging?: boolean;
}

export function createAuditYoga(deps: ServerDeps, options: YogaOptions = {}): AuditYoga {
  const logger = createLogger(options.logging === false ? 'silent' : 'info');
  return createYoga<ServerContext, GraphQLContext>({
    schema,
    graphqlEndpoint: '/graphql',
    healthCheckEndpoint: '/live',
    graphiql: options.graphiql ?? true,
    logging: logger,
    maskedErrors: { maskError: createErrorMasker(logger) },
    context: ({ request, req, socketAddress }) => buildContext(deps, request, socketAddress ?? req?.socket.remoteAddress),
    plugins: [useDatabaseHealth(deps.dataSource), useInputErrorCodes(), useAuditContext<GraphQLContext>((context) => context.audit)],
  });
}
