import type { QueryRunner } from 'typeorm';
import type { SyncDatabase } from './sql.js';

/**
 * TypeORM on better-sqlite3 after a failed COMMIT: for some errors (SQLITE_FULL, SQLITE_IOERR) SQLite has
 * already rolled the transaction back by itself. TypeORM then sends ROLLBACK, which fails ("no transaction
 * is active"), so it never clears its own flags and believes a transaction is still open; every later
 * transaction becomes a SAVEPOINT inside one that is never committed, while the app is told its writes
 * succeeded. (Seen: 66 of 109 acknowledged audit entries gone after a restart.)
 *
 * Called just before TypeORM's ROLLBACK: when the connection itself says no transaction is open, it opens
 * an empty one (with the savepoints TypeORM will name) for that ROLLBACK to end, so TypeORM's bookkeeping
 * ends where the connection is. Nothing of the app's is rolled back that SQLite had not rolled back already.
 */
export function alignRollbackWithConnection(runner: QueryRunner): void {
  if (runner.connection.options.type !== 'better-sqlite3') return;
  const db = (runner.connection.driver as unknown as { databaseConnection?: SyncDatabase }).databaseConnection;
  const depth = (runner as QueryRunner & { transactionDepth?: number }).transactionDepth ?? 0;
  if (!db || depth === 0 || db.inTransaction) return;
  db.exec('BEGIN');
  for (let level = 1; level < depth; level++) db.exec(`SAVEPOINT typeorm_${level}`);
}
