import { createLoaders } from '../db/loaders.js';
import { ResponseBudget } from '../services/response-budget.js';
import { DEFAULT_TENANT } from '../shared/tenant.js';
import type { Principal } from '../auth/principal.js';
import type { GraphQLContext, ServerDeps } from '../schema/context.js';

export interface RequestInfo {
  request: Request;
  socketAddress?: string;
  /** Already authenticated (a WebSocket authenticates once, at connection_init). */
  principal?: Principal | null;
}

/** Marks a context `buildContext` made, so that yoga's context factory does not build it again. */
const BUILT = Symbol('auditql.context');

export function isBuiltContext(context: object): context is GraphQLContext {
  return BUILT in context;
}

export async function buildContext(deps: ServerDeps, info: RequestInfo): Promise<GraphQLContext> {
  const { request } = info;
  const principal =
    info.principal !== undefined
      ? info.principal
      : await deps.auth.authenticate({ authorization: request.headers.get('authorization'), apiKey: request.headers.get('x-api-key') });
  const tenantId = principal?.tenantId ?? DEFAULT_TENANT;
  // Reads are capped per caller: one tenant's principal, however many requests it sends at once.
  const reads = { principal: principal ? `${tenantId}\u0000${principal.id}` : undefined };
  return {
    ...deps,
    reads,
    principal,
    tenantId,
    audit: {
      tenantId,
      author: principal ? { id: principal.id, name: principal.name, type: principal.type } : null,
      // The peer address only: forwarded headers are client-controlled and would let anyone forge the recorded IP.
      ip: info.socketAddress ?? null,
      userAgent: request.headers.get('user-agent'),
      requestId: request.headers.get('x-request-id'),
    },
    loaders: createLoaders(deps.dataSource, deps.store, tenantId, reads),
    responseBudget: ResponseBudget.forLimits(deps.limits),
    [BUILT]: true,
  } as GraphQLContext;
}
