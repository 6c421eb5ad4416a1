/**
 * The I/O of appending to the chain: claim each tenant's head (a write, which also takes the write lock on
 * SQLite and a row lock on PostgreSQL and MySQL, so that concurrent writers — other transactions, other
 * processes — queue behind it), and store the new heads. Both run in the transaction that inserts the
 * entries, so a rollback leaves no hole. The pure part is `linkEntries` (src/shared/chain/link.ts).
 *
 * Written as `Work` (src/db/sql.ts): the same statements run synchronously in the server's SQLite writer
 * and through an EntityManager inside an app's transaction or on PostgreSQL.
 */
import { exec, type Dialect, type Work } from '../../db/sql.js';
import { GENESIS_HASH } from '../../shared/chain/canonical.js';
import type { ChainHead } from '../../shared/chain/link.js';

/**
 * A write, not a read, comes first: a SQLite transaction that read first and wrote later fails with
 * SQLITE_BUSY when another connection committed in between; one that writes first waits its turn.
 */
const CLAIM: Record<Dialect, string> = {
  sqlite: `INSERT INTO "audit_chain_head" ("tenant_id", "sequence", "hash") VALUES (?, 0, ?) ON CONFLICT ("tenant_id") DO UPDATE SET "sequence" = "sequence"`,
  postgres: `INSERT INTO "audit_chain_head" ("tenant_id", "sequence", "hash") VALUES (?, 0, ?) ON CONFLICT ("tenant_id") DO UPDATE SET "sequence" = "audit_chain_head"."sequence"`,
  mysql: 'INSERT INTO `audit_chain_head` (`tenant_id`, `sequence`, `hash`) VALUES (?, 0, ?) ON DUPLICATE KEY UPDATE `sequence` = `sequence`',
};
const READ: Record<Dialect, string> = {
  sqlite: `SELECT "sequence", "hash" FROM "audit_chain_head" WHERE "tenant_id" = ?`,
  postgres: `SELECT "sequence", "hash" FROM "audit_chain_head" WHERE "tenant_id" = ?`,
  mysql: 'SELECT `sequence`, `hash` FROM `audit_chain_head` WHERE `tenant_id` = ? FOR UPDATE',
};
const SAVE: Record<Dialect, string> = {
  sqlite: `UPDATE "audit_chain_head" SET "sequence" = ?, "hash" = ? WHERE "tenant_id" = ?`,
  postgres: `UPDATE "audit_chain_head" SET "sequence" = ?, "hash" = ? WHERE "tenant_id" = ?`,
  mysql: 'UPDATE `audit_chain_head` SET `sequence` = ?, `hash` = ? WHERE `tenant_id` = ?',
};

export function* claimHeads(dialect: Dialect, tenants: readonly string[]): Work<Map<string, ChainHead>> {
  const heads = new Map<string, ChainHead>();
  for (const tenant of tenants) {
    // SQLite (3.35+) and PostgreSQL hand the head back from the claim itself: one statement per tenant
    // instead of two. A driver that runs an INSERT without returning its rows (TypeORM's sqlite3 driver)
    // returns none, and the head is then read by a statement of its own.
    const returning = dialect !== 'mysql';
    let { rows } = yield* exec<{ sequence: number | string; hash: string }>(returning ? `${CLAIM[dialect]} RETURNING "sequence", "hash"` : CLAIM[dialect], [tenant, GENESIS_HASH]);
    if (rows.length === 0) ({ rows } = yield* exec<{ sequence: number | string; hash: string }>(READ[dialect], [tenant]));
    const row = rows[0];
    if (!row) throw new Error(`the chain head of tenant ${tenant} could not be read`);
    heads.set(tenant, { sequence: Number(row.sequence), hash: row.hash });
  }
  return heads;
}

export function* saveHeads(dialect: Dialect, heads: ReadonlyMap<string, ChainHead>): Work<void> {
  for (const [tenant, head] of heads) yield* exec(SAVE[dialect], [head.sequence, head.hash, tenant]);
}
