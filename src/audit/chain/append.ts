import type { Database } from 'better-sqlite3';
import type { EntityManager } from 'typeorm';
import type { ChainRow } from '../../shared/chain/canonical.js';
import { linkEntries, type UnlinkedEntry } from '../../shared/chain/link.js';
import type { FieldMatcher } from '../../shared/chain/personal.js';
import { claimHeads, claimHeadsSync, saveHeads, saveHeadsSync } from './head.js';

const tails = new WeakMap<object, Promise<unknown>>();

/**
 * One append at a time per connection. TypeORM runs the subscriber hooks of one statement concurrently
 * (a builder insert of several rows calls afterInsert for each at once), and two appends interleaved on
 * one connection would both claim the same head. SQLite has one connection per DataSource; elsewhere
 * each transaction has its own query runner, and the database's row lock on the head orders them.
 */
function oneAtATime<T>(manager: EntityManager, work: () => Promise<T>): Promise<T> {
  const type: string = manager.connection.options.type;
  const key: object = type === 'sqlite' || type === 'better-sqlite3' || !manager.queryRunner ? manager.connection : manager.queryRunner;
  const result = (tails.get(key) ?? Promise.resolve()).then(work, work);
  tails.set(key, result.catch(() => undefined));
  return result;
}

/**
 * Gives `entries` their place in their tenants' chains and stores them with `insert`, in one transaction:
 * the caller's, or one of its own when the caller has none (a query-builder write outside a transaction),
 * so that claiming the head, inserting and moving the head are never split.
 */
export async function appendToChain(
  manager: EntityManager,
  entries: readonly UnlinkedEntry[],
  personal: FieldMatcher,
  insert: (manager: EntityManager, rows: ChainRow[]) => Promise<void>,
): Promise<ChainRow[]> {
  const run = async (transactional: EntityManager) => {
    const heads = await claimHeads(transactional, [...new Set(entries.map((e) => e.tenantId))]);
    const linked = linkEntries(heads, entries, personal);
    await insert(transactional, linked.rows);
    await saveHeads(transactional, linked.heads);
    return linked.rows;
  };
  return oneAtATime(manager, () => (manager.queryRunner?.isTransactionActive ? run(manager) : manager.transaction(run)));
}

/** The same on a better-sqlite3 handle; call it inside the write transaction (BEGIN IMMEDIATE … COMMIT). */
export function appendToChainSync(db: Database, entries: readonly UnlinkedEntry[], personal: FieldMatcher, insert: (rows: ChainRow[]) => void): ChainRow[] {
  if (!db.inTransaction) throw new Error('appendToChainSync runs inside the write transaction');
  const linked = linkEntries(claimHeadsSync(db, [...new Set(entries.map((e) => e.tenantId))]), entries, personal);
  insert(linked.rows);
  saveHeadsSync(db, linked.heads);
  return linked.rows;
}
