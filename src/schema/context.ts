import type { AuditContext } from '../audit/context.js';
import type { Authenticator } from '../auth/authenticate.js';
import type { Principal } from '../auth/principal.js';
import type { Loaders } from '../db/loaders.js';
import type { ReadOptions } from '../db/store.js';
import type { ServiceDeps } from '../services/deps.js';
import type { ResponseBudget } from '../services/response-budget.js';

/** What the server is made of; shared by every request. */
export interface ServerDeps extends ServiceDeps {
  auth: Authenticator;
}

/**
 * One per operation (HTTP request, SSE stream or graphql-ws subscribe), built by the one context factory
 * that all three transports go through (src/server/context.ts).
 */
export interface GraphQLContext extends ServerDeps {
  /** `null` without credentials; fields that need one answer UNAUTHENTICATED. */
  principal: Principal | null;
  /** Every query, count, chart, stream and lookup is confined to it. */
  tenantId: string;
  /** Who is acting and from where; every resolver runs inside it. */
  audit: AuditContext;
  loaders: Loaders;
  /** The caller's reads: their concurrency cap applies to every query of this operation. */
  reads: ReadOptions;
  /** The bytes of entries this operation's response may still carry (MAX_RESPONSE_BYTES). */
  responseBudget: ResponseBudget;
}
