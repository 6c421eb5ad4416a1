/**
 * The I/O of appending to the chain: claim each tenant's head (which also takes the write lock on SQLite and
 * a row lock on PostgreSQL, so that concurrent writers — other transactions, other processes — queue behind
 * it), and store the new heads. Both run in the transaction that inserts the entries, so a rollback leaves
 * no hole. The pure part is `linkEntries` (src/shared/chain/link.ts).
 */
import type { Database } from 'better-sqlite3';
import type { EntityManager } from 'typeorm';
import { GENESIS_HASH } from '../../shared/chain/canonical.js';
import type { ChainHead } from '../../shared/chain/link.js';

type Dialect = 'sqlite' | 'postgres' | 'mysql';

function dialectOf(manager: EntityManager): Dialect {
  const type: string = manager.connection.options.type;
  if (type === 'sqlite' || type === 'better-sqlite3') return 'sqlite';
  if (type === 'postgres') return 'postgres';
  if (type === 'mysql' || type === 'mariadb') return 'mysql';
  throw new Error(`auditql's chain supports SQLite, PostgreSQL and MySQL/MariaDB, not ${type}`);
}

/**
 * A write, not a read, as the first statement: a SQLite transaction that read first and wrote later fails
 * with SQLITE_BUSY when another connection committed in between; one that writes first waits its turn.
 */
const CLAIM = {
  sqlite: `INSERT INTO "audit_chain_head" ("tenant_id", "sequence", "hash") VALUES (?, 0, ?) ON CONFLICT ("tenant_id") DO UPDATE SET "sequence" = "sequence" RETURNING "sequence", "hash"`,
  postgres: `INSERT INTO "audit_chain_head" ("tenant_id", "sequence", "hash") VALUES ($1, 0, $2) ON CONFLICT ("tenant_id") DO UPDATE SET "sequence" = "audit_chain_head"."sequence" RETURNING "sequence", "hash"`,
};
const SAVE = {
  sqlite: `UPDATE "audit_chain_head" SET "sequence" = ?, "hash" = ? WHERE "tenant_id" = ?`,
  postgres: `UPDATE "audit_chain_head" SET "sequence" = $1, "hash" = $2 WHERE "tenant_id" = $3`,
  mysql: 'UPDATE `audit_chain_head` SET `sequence` = ?, `hash` = ? WHERE `tenant_id` = ?',
};

const toHead = (row: { sequence: number | string; hash: string } | undefined, tenant: string): ChainHead => {
  if (!row) throw new Error(`the chain head of tenant ${tenant} could not be read`);
  return { sequence: Number(row.sequence), hash: row.hash };
};

export async function claimHeads(manager: EntityManager, tenants: readonly string[]): Promise<Map<string, ChainHead>> {
  const dialect = dialectOf(manager);
  const heads = new Map<string, ChainHead>();
  for (const tenant of tenants) {
    if (dialect === 'mysql') {
      await manager.query('INSERT INTO `audit_chain_head` (`tenant_id`, `sequence`, `hash`) VALUES (?, 0, ?) ON DUPLICATE KEY UPDATE `sequence` = `sequence`', [tenant, GENESIS_HASH]);
      const [row] = (await manager.query('SELECT `sequence`, `hash` FROM `audit_chain_head` WHERE `tenant_id` = ? FOR UPDATE', [tenant])) as Array<{ sequence: number; hash: string }>;
      heads.set(tenant, toHead(row, tenant));
      continue;
    }
    const [row] = (await manager.query(CLAIM[dialect], [tenant, GENESIS_HASH])) as Array<{ sequence: number | string; hash: string }>;
    heads.set(tenant, toHead(row, tenant));
  }
  return heads;
}

export async function saveHeads(manager: EntityManager, heads: ReadonlyMap<string, ChainHead>): Promise<void> {
  const sql = SAVE[dialectOf(manager)];
  for (const [tenant, head] of heads) await manager.query(sql, [head.sequence, head.hash, tenant]);
}

/** The same over a better-sqlite3 handle, for synchronous write transactions (BEGIN IMMEDIATE … COMMIT). */
export function claimHeadsSync(db: Database, tenants: readonly string[]): Map<string, ChainHead> {
  const claim = db.prepare<[string, string], { sequence: number; hash: string }>(CLAIM.sqlite);
  return new Map(tenants.map((tenant) => [tenant, toHead(claim.get(tenant, GENESIS_HASH), tenant)]));
}

export function saveHeadsSync(db: Database, heads: ReadonlyMap<string, ChainHead>): void {
  const save = db.prepare(SAVE.sqlite);
  for (const [tenant, head] of heads) save.run(head.sequence, head.hash, tenant);
}
