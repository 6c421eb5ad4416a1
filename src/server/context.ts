import type { DataSource } from 'typeorm';
import type { Limits } from '../config.js';
import type { AuditPubSub } from '../pubsub.js';
import { createLoaders, type Loaders } from '../db/loaders.js';
import type { AuditContext } from '../audit/context.js';
import { DEFAULT_TENANT } from '../audit/context.js';

/** What the server is made of; shared by every request. */
export interface ServerDeps {
  dataSource: DataSource;
  pubsub: AuditPubSub;
  limits: Limits;
}

/**
 * One per operation (HTTP request, SSE stream or graphql-ws subscribe), built by the one context factory
 * that all three transports go through.
 */
export interface GraphQLContext extends ServerDeps {
  tenantId: string;
  /** Who is acting and from where; resolvers that write run inside it. */
  audit: AuditContext;
  loaders: Loaders;
}

export function buildContext(deps: ServerDeps, request: Request, socketAddress?: string): GraphQLContext {
  const tenantId = DEFAULT_TENANT;
  return {
    ...deps,
    tenantId,
    audit: {
      tenantId,
      // The peer address only: forwarded headers are client-controlled and would let anyone forge the recorded IP.
      ip: socketAddress ?? null,
      userAgent: request.headers.get('user-agent'),
      requestId: request.headers.get('x-request-id'),
    },
    loaders: createLoaders(deps.dataSource, tenantId),
  };
}
