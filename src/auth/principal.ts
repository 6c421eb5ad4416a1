/** The permissions a principal may hold. */
export const Scope = {
  /** Queries, the activity chart and the live subscription. */
  Read: 'audit:read',
  /** `logEvent`. */
  Write: 'audit:write',
  /** `renameLog`, API keys, and later administrative operations. */
  Admin: 'audit:admin',
  /** Lets a trusted backend record entries in its end users' names (`logEvent(input.author)`). */
  Impersonate: 'audit:impersonate',
} as const;
export type Scope = (typeof Scope)[keyof typeof Scope];
export const ALL_SCOPES: readonly Scope[] = Object.values(Scope);

/** Who is calling, resolved once per request from its credentials. */
export interface Principal {
  /** The JWT `sub`, or `apikey:<id>` for API keys. */
  id: string;
  name: string | null;
  type: 'user' | 'service';
  scopes: ReadonlySet<string>;
  tenantId: string;
  /** When the credentials stop being valid (epoch ms); live subscriptions end then. */
  expiresAt: number | null;
  via: 'jwt' | 'api-key' | 'viewer-token';
  /** API keys: aborts when the key is revoked; open streams and sockets end then. */
  revoked?: AbortSignal;
  /** Viewer tokens only: every read is confined to these conditions (on top of the tenant). */
  restriction?: ViewerRestriction;
}

/**
 * The part of the log a viewer token may read: the conditions of an `AuditLogFilter` (lists match any of
 * their values, `from` inclusive and `to` exclusive, epoch ms). Search is not among them: two searches do
 * not combine into one.
 */
export interface ViewerRestriction {
  resource?: string[];
  resourceId?: string;
  action?: string[];
  authorId?: string[];
  transactionId?: string;
  from?: number;
  to?: number;
}

export function parseScopes(value: unknown): Set<string> {
  if (typeof value === 'string') return new Set(value.split(/\s+/).filter(Boolean));
  if (Array.isArray(value)) return new Set(value.filter((s): s is string => typeof s === 'string'));
  return new Set();
}
