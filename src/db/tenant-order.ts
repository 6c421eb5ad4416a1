import { exec, type Dialect, type Work } from './sql.js';

/** Where an entry stands in its tenant's log: the order of cursors and of the resumable stream. */
export interface LogPoint {
  createdAt: number;
  id: number;
}

/**
 * The advisory-lock namespace of auditql (the two-key form, so that it never meets an application's own
 * one-key advisory locks): "AQL" in ASCII.
 */
const LOCK_SPACE = 0x41514c;

/** The position of the entry committed just before each entry in its tenant's log (null: the first). */
const preceding = new WeakMap<object, LogPoint | null>();

/**
 * The position of the tenant's entry committed just before `entry`, when the writer knew it (on
 * PostgreSQL): a live relay that last delivered exactly that position can deliver `entry` without asking
 * the database. `undefined` when unknown.
 */
export function precedingPosition(entry: object): LogPoint | null | undefined {
  return preceding.get(entry);
}

export function setPrecedingPosition(entry: object, position: LogPoint | null): void {
  preceding.set(entry, position);
}

export interface TenantClaim {
  /** The tenant's newest committed entry (as this transaction sees it), or null for an empty log. */
  head: LogPoint | null;
  /** The database's clock, in epoch ms, read after the lock. */
  now: number;
}

/**
 * PostgreSQL: one writer at a time per tenant, from the first entry a transaction writes until it commits.
 *
 * Without it, two transactions writing one tenant's entries could commit in the opposite order of their
 * ids and times (each takes its id and time before the other commits), and a cursor or a live subscriber
 * that already passed the later one would never see the earlier one. Under the lock:
 * - ids come from the sequence after the previous writer committed, so they grow in commit order;
 * - the time is the database's clock (one clock for every instance), never below the tenant's newest
 *   entry, so (createdAt, id) grows in commit order per tenant;
 * - any snapshot that sees an entry sees every entry of the tenant committed before it.
 * The same lock gives the tenant's chain its gapless sequence. The locks are taken in one order (by their
 * key) so that two writers of several tenants cannot deadlock each other.
 *
 * Two statements: the lock first, and only then the head, in a statement of its own, so that (under READ
 * COMMITTED) it reads a snapshot taken after the previous writer committed.
 */
export function* claimTenants(dialect: Dialect, tenants: readonly string[]): Work<Map<string, TenantClaim>> {
  const claims = new Map<string, TenantClaim>();
  if (dialect !== 'postgres' || tenants.length === 0) return claims;
  const unique = [...new Set(tenants)];
  yield* exec(`SELECT pg_advisory_xact_lock(${LOCK_SPACE}, "k") FROM (SELECT DISTINCT hashtext("t") AS "k" FROM unnest(?::text[]) AS "t") AS "keys" ORDER BY "k"`, [unique]);
  const { rows } = yield* exec<{ tenant: string; created_at: string | null; id: number | null; now: string }>(
    `SELECT "t"."tenant", "h"."created_at", "h"."id", floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint AS "now"
     FROM unnest(?::text[]) AS "t"("tenant")
     LEFT JOIN LATERAL (SELECT "created_at", "id" FROM "audit_log" WHERE "tenant_id" = "t"."tenant" ORDER BY "created_at" DESC, "id" DESC LIMIT 1) AS "h" ON true`,
    [unique],
  );
  for (const row of rows) {
    claims.set(row.tenant, { head: row.created_at === null ? null : { createdAt: Number(row.created_at), id: Number(row.id) }, now: Number(row.now) });
  }
  return claims;
}
