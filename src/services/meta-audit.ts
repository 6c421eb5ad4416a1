import type { AuditContext } from '../audit/context.js';
import type { TenantDraft } from '../audit/group-commit.js';
import type { AuditLog } from '../db/entities/audit-log.entity.js';
import type { Principal } from '../auth/principal.js';
import { canonicalJson } from '../shared/chain/canonical.js';
import type { JsonObject, JsonValue } from '../shared/json.js';
import type { Logger } from '../shared/logger.js';
import type { MetaAuditMode } from '../config.js';

export type { MetaAuditMode };

/** Who did it, from where: the request's principal and audit context. */
export interface MetaActor {
  principal: Principal | null;
  audit: AuditContext;
}

export interface MetaEvent {
  /** @default 'audit_log' */
  resource?: 'audit_log' | 'api_key';
  action: string;
  /** The GraphQL field (or command) that did it. */
  operation: string;
  resourceId?: string | null;
  /** The filter or arguments used. */
  filter?: unknown;
  /** What came of it (a verification's result, a key's name and scopes). */
  data?: JsonValue;
}

export interface MetaAudit {
  /**
   * A read of entries (action view or subscribe). Identical reads (principal, operation, filter) within the
   * window become one entry with `meta.count`, written when the window closes, through the group commit:
   * no read waits for a write.
   */
  read(actor: MetaActor, event: MetaEvent): void;
  /** Anything else: written at once; resolves when committed. */
  record(actor: MetaActor, event: MetaEvent): Promise<void>;
  /** Writes every open window now (the server's stop does this). */
  flush(): Promise<void>;
}

export interface MetaAuditOptions {
  /**
   * `all`: reads of entries (view, subscribe) and everything `changes` records. `changes`: verifications,
   * checkpoints and API-key changes. `off`: nothing. @default 'all'
   */
  mode?: MetaAuditMode;
  /** @default 60000 */
  windowMs?: number;
}

interface Window {
  actor: MetaActor;
  event: MetaEvent;
  count: number;
  firstAt: number;
  lastAt: number;
  timer?: NodeJS.Timeout;
}

/**
 * The values of a recorded filter that can name a person: the authors filtered by, a record's id, the
 * searched text. They are declared personal (hashed with version 2), so that erasing a person also erases
 * them from others' reads of the log (README, "Erasure").
 */
export const FILTER_PERSONAL_PATHS: readonly string[] = ['/meta/filter/authorId', '/meta/filter/resourceId', '/meta/filter/search'];

/** JSON-safe copy: Dates as ISO strings, undefined left out. */
const toJson = (value: unknown): JsonValue => (value === undefined ? null : (JSON.parse(JSON.stringify(value) ?? 'null') as JsonValue));

/**
 * The audit log's own audit trail (PCI DSS 10.2.1.3): who read, streamed, verified or checkpointed the log
 * and who changed API keys, as entries of resource `audit_log` / `api_key`. Recording a read writes an entry,
 * which is not itself a read, so nothing recurses; and reading those entries is one more read, coalesced
 * like any other, so a dashboard polling them adds one entry per window, not one per entry it sees.
 */
export function createMetaAudit(submit: (draft: TenantDraft) => Promise<AuditLog>, logger: Pick<Logger, 'error'>, options: MetaAuditOptions = {}): MetaAudit {
  const mode = options.mode ?? 'all';
  const windowMs = options.windowMs ?? 60_000;
  const open = new Map<string, Window>();

  const write = (actor: MetaActor, event: MetaEvent, meta: JsonObject) => {
    const principal = actor.principal;
    if (!principal) return Promise.resolve();
    return submit({
      tenantId: principal.tenantId,
      resource: event.resource ?? 'audit_log',
      action: event.action,
      resourceId: event.resourceId ?? null,
      author: { id: principal.id, name: principal.name, type: principal.type },
      ip: actor.audit.ip ?? null,
      userAgent: actor.audit.userAgent ?? null,
      data: event.data ?? null,
      meta: { operation: event.operation, ...(event.filter !== undefined ? { filter: toJson(event.filter) } : {}), ...meta },
      personal: event.filter !== undefined ? FILTER_PERSONAL_PATHS : undefined,
    }).then(() => undefined);
  };

  const close = (key: string) => {
    const window = open.get(key);
    if (!window) return Promise.resolve();
    open.delete(key);
    if (window.timer) clearTimeout(window.timer);
    return write(window.actor, window.event, { count: window.count, firstAt: new Date(window.firstAt).toISOString(), lastAt: new Date(window.lastAt).toISOString() }).catch((error: unknown) =>
      logger.error({ err: error }, 'recording a read of the audit log failed'),
    );
  };

  return {
    read(actor, event) {
      if (mode !== 'all' || !actor.principal) return;
      const now = Date.now();
      const key = canonicalJson([actor.principal.tenantId, actor.principal.id, event.action, event.operation, event.resourceId ?? null, toJson(event.filter)]);
      const window = open.get(key);
      if (window) {
        window.count++;
        window.lastAt = now;
        return;
      }
      open.set(key, { actor, event, count: 1, firstAt: now, lastAt: now });
      if (windowMs === 0) {
        void close(key);
        return;
      }
      const timer = setTimeout(() => void close(key), windowMs);
      timer.unref();
      open.get(key)!.timer = timer;
    },
    async record(actor, event) {
      if (mode === 'off') return;
      await write(actor, event, {});
    },
    async flush() {
      await Promise.all([...open.keys()].map(close));
    },
  };
}
