import { AsyncLocalStorage } from 'node:async_hooks';
import type { JsonObject } from '../shared/json.js';

/** Who did something: recorded as the entry's author. */
export interface AuditActor {
  id: string;
  name?: string | null;
  type?: string | null;
}

/** Who is acting, and from where. Every entry written inside `withAuditContext` carries it. */
export interface AuditContext {
  author?: AuditActor | null;
  ip?: string | null;
  userAgent?: string | null;
  meta?: JsonObject | null;
  requestId?: string | null;
  /** @default 'default' */
  tenantId?: string;
}

const storage = new AsyncLocalStorage<AuditContext>();

/**
 * Runs `fn` with `context` as the acting context. It follows every await inside `fn`, however deep,
 * so changes captured anywhere in that call tree are attributed to it.
 */
export function withAuditContext<T>(context: AuditContext, fn: () => T): T {
  return storage.run(context, fn);
}

/** The acting context of the code running now (set by `withAuditContext`), if any. */
export function currentAuditContext(): AuditContext | undefined {
  return storage.getStore();
}

