import type { IncomingMessage } from 'node:http';
import { NoSchemaIntrospectionCustomRule } from 'graphql';
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import { createYoga, type Plugin, type YogaLogger, type YogaServerInstance } from 'graphql-yoga';
import type { Logger } from '../shared/logger.js';
import type { Principal } from '../auth/principal.js';
import { schema } from '../schema/index.js';
import { useAuditContext } from './audit-context.plugin.js';
import type { GraphQLContext, ServerDeps } from '../schema/context.js';
import { buildContext, isBuiltContext } from './context.js';
import { createErrorMasker } from './errors.js';
import { useHealthEndpoints, type ReadinessCheck } from './health.js';
import { useCheckpointEndpoints } from './checkpoints.js';
import { useExportEndpoint } from './export.js';
import { useInputErrorCodes } from './input-errors.js';
import { useCostLimit } from './cost-limit.js';
import { useResponseBudgetErrors } from './response-budget.plugin.js';
import { useViewer, viewerFeatures } from './viewer.js';
import { corsPolicy } from './cors.js';
import { selfHostedGraphiQL } from './graphiql.js';
import { useSecurityHeaders } from './security-headers.js';
import { useWellFormedInput } from './well-formed-input.js';
import { useBodyLimit } from './body-limit.js';

/** What the Node HTTP server and the WebSocket adapter hand to yoga next to the request. */
export interface ServerContext {
  req?: IncomingMessage;
  socketAddress?: string;
  /** Set by the WebSocket adapter, which authenticates once per connection. */
  principal?: Principal | null;
}

export type AuditYoga = YogaServerInstance<ServerContext, GraphQLContext>;

export interface YogaOptions {
  /** More conditions of `/ready` (Redis reachable, …). */
  readiness?: ReadinessCheck[];
  /** @default true */
  graphiql?: boolean;
  logger: Logger;
  /** Introspection and field suggestions off. @default false */
  production?: boolean;
  /** Origins allowed to call the API from a browser page (`*`: any). @default [] (none) */
  corsOrigins?: readonly string[];
  /** Exports the server runs at once (each holds a reader thread or connection while it lasts). @default 1 */
  exportsAtOnce?: number;
  /** More plugins, after the server's own. */
  plugins?: Plugin[];
}

/** Query shape limits, by graphql-armor. A legitimate dashboard query stays far below each. (Cost: MAX_QUERY_COST.) */
export const QUERY_LIMITS = { maxDepth: 10, maxAliases: 50, maxDirectives: 20, maxTokens: 5000 };

/** Request headers that prove a request is not a cross-site "simple" request. */
export const CSRF_SAFE_HEADERS = ['x-graphql-yoga-csrf', 'authorization', 'x-api-key'];

/** yoga logs through the server's pino logger; its variadic calls become one message and, for errors, `err`. */
function yogaLogger(logger: Logger): YogaLogger {
  const at = (level: 'debug' | 'info' | 'warn' | 'error') => (...args: unknown[]) => {
    const error = args.find((arg) => arg instanceof Error);
    const message = args.filter((arg) => typeof arg === 'string').join(' ');
    if (error) logger[level]({ err: error }, message || error.message);
    else logger[level](message);
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/**
 * Introspection off for every operation, whatever the transport. (`@graphql-yoga/plugin-disable-introspection`
 * decides per HTTP request in `onRequestParse`, which graphql-ws operations never pass through, so
 * introspection stayed open on sockets.)
 */
function useNoIntrospection(): Plugin {
  return {
    onValidate({ addValidationRule }) {
      addValidationRule(NoSchemaIntrospectionCustomRule);
    },
  };
}

export function createAuditYoga(deps: ServerDeps, options: YogaOptions): AuditYoga {
  const logger = yogaLogger(options.logger);
  const graphiql = selfHostedGraphiQL();
  // Cast: yoga's plugin types are invariant in the context, so plugins for different contexts do not mix.
  const plugins = [
    useHealthEndpoints(deps.dataSource, deps.store.health, deps.closing, options.readiness),
    useViewer({ features: viewerFeatures(schema) }),
    useCheckpointEndpoints(deps),
    useExportEndpoint(deps, { logger: options.logger, exportsAtOnce: options.exportsAtOnce }),
    // Browsers may only send requests that a CORS preflight guards: JSON bodies, or one of these headers.
    // None of them is CORS-safelisted, so a cross-site page cannot add them without a preflight; that is
    // why credentials in `Authorization` / `x-api-key` are enough (GET queries from urql, for example).
    useCSRFPrevention({ requestHeaders: CSRF_SAFE_HEADERS }),
    EnvelopArmorPlugin({
      maxDepth: { n: QUERY_LIMITS.maxDepth },
      maxAliases: { n: QUERY_LIMITS.maxAliases },
      maxDirectives: { n: QUERY_LIMITS.maxDirectives },
      maxTokens: { n: QUERY_LIMITS.maxTokens },
      // The cost that matters depends on arguments (search, chart range, groupBy), which armor's cost
      // limit cannot see: useCostLimit below weighs them.
      costLimit: { enabled: false },
      blockFieldSuggestion: { enabled: options.production ?? false },
    }),
    useInputErrorCodes(),
    useCostLimit(deps.limits.maxQueryCost),
    useResponseBudgetErrors(),
    useWellFormedInput(),
    useSecurityHeaders({ htmlPolicy: graphiql.policy }),
    // The server's one subscription only reads (its meta-audit entry is written with the context explicitly).
    useAuditContext<GraphQLContext>((context) => context.audit, { subscriptions: false }),
  ] as unknown as Plugin[];
  if (options.production) plugins.push(useNoIntrospection());
  plugins.push(...(options.plugins ?? []));
  // Last: it wraps whichever request parser the plugins before it chose (see body-limit.ts).
  plugins.push(useBodyLimit(deps.limits.maxBodyBytes));
  return createYoga<ServerContext, GraphQLContext>({
    schema,
    graphqlEndpoint: '/graphql',
    healthCheckEndpoint: '/live',
    graphiql: options.graphiql ?? true,
    renderGraphiQL: (options) => graphiql.render(options),
    cors: corsPolicy(options.corsOrigins ?? []),
    logging: logger,
    // Uploads are not part of the API, and multipart forms are a CSRF vector.
    multipart: false,
    batching: false,
    // The body limit is a plugin of ours (useBodyLimit), so it holds wherever yoga runs (embedded in an
    // app's server too) without yoga's stream per request.
    maxRequestBodySize: false,
    maskedErrors: { maskError: createErrorMasker(logger) },
    // A graphql-ws operation arrives with its context already built (see ws.ts): nothing is added to it.
    context: (initial) => (isBuiltContext(initial) ? initial : buildContext(deps, { request: initial.request, socketAddress: initial.socketAddress ?? initial.req?.socket.remoteAddress, principal: initial.principal })),
    plugins,
  });
}
