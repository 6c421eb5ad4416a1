import type { DataSource } from 'typeorm';
import type { Limits } from '../config.js';
import type { AuditPubSub } from '../pubsub.js';
import { createLoaders, type Loaders } from '../db/loaders.js';
import { DEFAULT_TENANT, type AuditContext } from '../audit/context.js';
import type { Authenticator } from '../auth/authenticate.js';
import type { Principal } from '../auth/principal.js';
import type { Quotas } from '../services/quotas.js';

/** What the server is made of; shared by every request. */
export interface ServerDeps {
  dataSource: DataSource;
  pubsub: AuditPubSub;
  limits: Limits;
  auth: Authenticator;
  quotas: Quotas;
}

/**
 * One per operation (HTTP request, SSE stream or graphql-ws subscribe), built by the one context factory
 * that all three transports go through.
 */
export interface GraphQLContext extends ServerDeps {
  /** `null` without credentials; fields that need one answer UNAUTHENTICATED. */
  principal: Principal | null;
  /** Every query, count, chart, stream and lookup is confined to it. */
  tenantId: string;
  /** Who is acting and from where; every resolver runs inside it. */
  audit: AuditContext;
  loaders: Loaders;
}

export interface RequestInfo {
  request: Request;
  socketAddress?: string;
  /** Already authenticated (a WebSocket authenticates once, at connection_init). */
  principal?: Principal | null;
}

export async function buildContext(deps: ServerDeps, info: RequestInfo): Promise<GraphQLContext> {
  const { request } = info;
  const principal =
    info.principal !== undefined
      ? info.principal
      : await deps.auth.authenticate({ authorization: request.headers.get('authorization'), apiKey: request.headers.get('x-api-key') });
  const tenantId = principal?.tenantId ?? DEFAULT_TENANT;
  return {
    ...deps,
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
    loaders: createLoaders(deps.dataSource, tenantId),
  };
}
