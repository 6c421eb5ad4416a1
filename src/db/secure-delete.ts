/**
 * Removing bytes from a SQLite file for good (erasure). SQLite leaves deleted or overwritten content in free
 * space inside pages, on free pages and in old frames of the write-ahead log: `secure_delete` makes it write
 * zeros over what a statement frees, `VACUUM` rebuilds the file from live content only, and a
 * `wal_checkpoint(TRUNCATE)` copies the log into the file and truncates it to nothing.
 */
import type { DataSource } from 'typeorm';
import { exec, type Dialect, type Work } from './sql.js';
import { rawHandle } from './store.js';

const MODES = ['OFF', 'ON', 'FAST'];

/**
 * Runs `work` with `secure_delete = ON` on SQLite, then sets it back to what the connection had (an app's
 * connection keeps its own setting). Elsewhere it just runs `work`.
 */
export function* withSecureDelete<T>(dialect: Dialect, work: Work<T>): Work<T> {
  if (dialect !== 'sqlite') return yield* work;
  const { rows } = yield* exec('PRAGMA secure_delete');
  const before = Number(Object.values(rows[0] ?? {})[0] ?? 0);
  if (before !== 1) yield* exec('PRAGMA secure_delete = ON');
  const result = yield* work;
  if (before !== 1) yield* exec(`PRAGMA secure_delete = ${MODES[before] ?? 'OFF'}`);
  return result;
}

interface Handle {
  inTransaction: boolean;
  pragma(source: string): unknown;
  exec(source: string): unknown;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs `statement` on the SQLite connection of `dataSource` outside any transaction, when none is open
 * (the server's writes run whole within one turn of the event loop; an app's TypeORM transaction is
 * waited for). `done` tells from the statement's result whether it achieved what it should (a checkpoint
 * reports readers in the way); until then it is tried again for up to `timeoutMs`. False when there is no
 * SQLite handle or time ran out.
 */
async function whenIdle(dataSource: DataSource, run: (db: Handle) => boolean, timeoutMs: number): Promise<boolean> {
  const db = rawHandle(dataSource) as Handle | undefined;
  if (!db) return false;
  const deadline = Date.now() + timeoutMs;
  for (let backoff = 1; ; backoff = Math.min(backoff * 2, 100)) {
    if (!dataSource.isInitialized) return false;
    if (!db.inTransaction && run(db)) return true;
    if (Date.now() >= deadline) return false;
    await sleep(backoff);
  }
}

/**
 * Copies the write-ahead log into the database file and truncates it to zero bytes, so that no old frame
 * keeps a page as it was. Readers in the middle of a read hold it up; it is tried again until `timeoutMs`.
 * True when done (also for a database without a log, in memory).
 */
export function truncateWal(dataSource: DataSource, timeoutMs = 10_000): Promise<boolean> {
  return whenIdle(
    dataSource,
    (db) => {
      const [result] = db.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number }>;
      return result?.busy === 0;
    },
    timeoutMs,
  );
}

/**
 * Rebuilds the database file from its live content (`VACUUM`), leaving no free page or free space that
 * still holds old bytes, then truncates the log. It holds the write lock for as long as it takes (in
 * proportion to the file's size), blocking the connection's thread: for the command line, not a server.
 */
export async function vacuum(dataSource: DataSource, timeoutMs = 10_000): Promise<boolean> {
  const done = await whenIdle(
    dataSource,
    (db) => {
      try {
        db.exec('VACUUM');
        return true;
      } catch (error) {
        // Another connection holds a lock: try again; anything else is a real failure.
        if (/^SQLITE_(BUSY|LOCKED)/.test(String((error as { code?: unknown }).code))) return false;
        throw error;
      }
    },
    timeoutMs,
  );
  return done && (await truncateWal(dataSource, timeoutMs));
}
