import { ErrorCode, StorageError } from '../shared/errors.js';
import { exec, runSync, type SyncDatabase, type Work } from './sql.js';
import type { StorageHealth } from './storage-health.js';
import type { WalMaintenance, WriteOptions } from './store-types.js';
import { WalCheckpointer } from './wal-checkpointer.js';

export interface SqliteWriterOptions {
  /** Longest a write waits for another connection's lock before it fails with STORAGE_UNAVAILABLE. */
  lockWaitMs: number;
  /** While writes fail, how often the writer tries one of its own to find out whether they work again. @default 1000 */
  probeIntervalMs?: number;
  /** The database file, for a checkpoint thread during maintenance; none in memory. */
  file?: string;
  /** The connection is the server's alone (not an app's DataSource shared with it). */
  ownsConnection?: boolean;
}

/**
 * During maintenance, the log is started over (by the next write, once a checkpoint has copied all of it)
 * when it holds more frames than this: 1,024 pages, 4 MB with SQLite's default page size (a purge batch
 * writes a few hundred).
 */
const RESTART_LOG_FRAMES = 1024;

/** A write of one row of its own: only a real commit shows that the database takes writes again. */
function* probe(): Work<void> {
  yield* exec(
    'INSERT INTO "audit_storage_probe" ("id", "checked_at") VALUES (1, ?) ON CONFLICT ("id") DO UPDATE SET "checked_at" = excluded."checked_at"',
    [Date.now()],
  );
}

/** SQLite result codes that mean the database cannot take writes (as opposed to a mistake in one statement). */
const STORAGE_FAILURES = /^SQLITE_(FULL|IOERR|CORRUPT|NOTADB|READONLY|CANTOPEN|NOMEM|PROTOCOL)/;
const BUSY = /^SQLITE_(BUSY|LOCKED)/;

function codeOf(error: unknown): string {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' ? code : '';
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The server's writes on SQLite: each a `BEGIN IMMEDIATE … COMMIT` run synchronously on the
 * better-sqlite3 handle, one at a time, in arrival order.
 *
 * - Synchronous, so nothing else in the process can run a statement inside it, and a failure leaves no
 *   ORM state behind: after any error the connection's own `inTransaction` decides, and whatever is
 *   still open is rolled back. (TypeORM, after a failed COMMIT, believed a transaction was still open and
 *   turned every later write into a savepoint that was never committed, while acknowledging it.)
 * - An entry is acknowledged only after the COMMIT that contains it has returned.
 * - When another connection or process holds the write lock (SQLITE_BUSY), the writer does not wait on
 *   the event loop (better-sqlite3's busy timeout would block the whole process): it backs off
 *   asynchronously and retries the whole transaction, and gives up after `lockWaitMs`.
 * - When the app's own TypeORM transaction is open on a shared connection, the writer waits for it to end
 *   instead of joining it.
 */
export class SqliteWriter {
  private tail: Promise<unknown> = Promise.resolve();
  private probing: NodeJS.Timeout | undefined;
  /** Maintenance runs under way, the checkpoint thread they share and the automatic checkpoint to put back. */
  private maintaining: { runs: number; checkpointer: WalCheckpointer; autocheckpoint: number; tempStore: number | null; longestPauseMs: number } | undefined;

  constructor(
    private readonly db: SyncDatabase,
    private readonly health: StorageHealth,
    private readonly options: SqliteWriterOptions,
  ) {}

  /** Runs `work()` as one transaction; `work` is called again from the start if the transaction is retried. */
  transaction<T>(work: () => Work<T>, options: WriteOptions = {}): Promise<T> {
    const run = this.tail.then(() => this.attempt(work, options));
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async attempt<T>(work: () => Work<T>, options: WriteOptions = {}): Promise<T> {
    const deadline = Date.now() + this.options.lockWaitMs;
    for (let backoff = 1; ; backoff = Math.min(backoff * 2, 50)) {
      if (!this.db.inTransaction) {
        try {
          const result = options.relaxed ? this.relaxed(() => this.runOnce(work)) : this.runOnce(work);
          if (!options.background) this.health.succeeded();
          return result;
        } catch (error) {
          if (!BUSY.test(codeOf(error))) throw this.failure(error);
        }
      }
      if (Date.now() >= deadline) {
        this.unhealthy('SQLITE_BUSY');
        throw new StorageError(`The database stayed locked by another connection for ${this.options.lockWaitMs} ms; nothing was stored`, ErrorCode.StorageUnavailable, { reason: 'LOCKED' });
      }
      await sleep(backoff);
    }
  }

  /** Commits without waiting for the disk (WAL, `synchronous = NORMAL`), then puts the level back. */
  private relaxed<T>(run: () => T): T {
    const [row] = this.db.prepare('PRAGMA synchronous').all() as Array<{ synchronous: number }>;
    const level = Number(row?.synchronous ?? 1);
    if (level <= 1) return run();
    this.db.exec('PRAGMA synchronous = NORMAL');
    try {
      return run();
    } finally {
      this.db.exec(`PRAGMA synchronous = ${level}`);
    }
  }

  private runOnce<T>(work: () => Work<T>): T {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const result = runSync(this.db, work());
      this.db.exec('COMMIT');
      return result;
    } catch (error) {
      // SQLite may already have rolled back by itself (it does for SQLITE_FULL at COMMIT, for instance):
      // the connection's own state decides, never a flag of ours.
      if (this.db.inTransaction) {
        try {
          this.db.exec('ROLLBACK');
        } catch {
          // Nothing more can be done on this connection; the next attempt finds out.
        }
      }
      throw error;
    }
  }

  /**
   * Starts a run of heavy writes (see WalMaintenance): automatic checkpoints off on this connection, a
   * checkpoint thread instead. Undefined for a database in memory, which has no log.
   */
  maintenance(): WalMaintenance | undefined {
    if (!this.options.file) return undefined;
    if (!this.maintaining) {
      const pragma = (this.db as unknown as { pragma(source: string, options?: { simple: boolean }): unknown }).pragma.bind(this.db);
      const autocheckpoint = Number(pragma('wal_autocheckpoint', { simple: true }));
      pragma('wal_autocheckpoint = 0');
      // Statement journals in memory for the run: a purge batch's DELETE spilled its journal (the pages it
      // changes, kept to undo the statement alone) to a temp file past 64 KiB, ~40 % of its time (perf),
      // with the deleted rows' content. Only for the run: a VACUUM or a large sort would then be held in
      // memory whole. Only on a connection the server owns: the change drops an app's temporary tables.
      const tempStore = Number(pragma('temp_store', { simple: true }));
      let memory = false;
      if (this.options.ownsConnection) {
        try {
          pragma('temp_store = MEMORY');
          memory = true;
        } catch {
          // Refused inside a transaction: the run goes without it.
        }
      }
      this.maintaining = { runs: 0, checkpointer: new WalCheckpointer(this.options.file), autocheckpoint, tempStore: memory ? tempStore : null, longestPauseMs: 0 };
    }
    const session = this.maintaining;
    session.runs++;
    let ended = false;
    let settling: Promise<void> | undefined;
    return {
      settle: () => {
        settling ??= this.settle(session).then(
          () => {
            settling = undefined;
          },
          () => {
            // The thread failed: let the commits checkpoint again, as they do outside maintenance.
            settling = undefined;
            void this.endMaintenance(session);
          },
        );
        return settling;
      },
      longestPauseMs: () => session.longestPauseMs,
      end: async () => {
        if (ended) return;
        ended = true;
        await settling;
        session.runs--;
        if (session.runs === 0) await this.endMaintenance(session);
      },
    };
  }

  /**
   * One pass of the checkpoint thread over the log, while writes go on. A log is only started over by a
   * write that begins when every frame has been copied back, and with writes going on during the pass, one
   * always lands in it: so once the log is past RESTART_LOG_FRAMES, a second pass runs with this process's
   * writes held back (they wait in the queue, the event loop stays free). It copies only what the first
   * left, but it does wait for the disk (measured: 1–50 ms, longer when other commits are flushing too),
   * and for readers still reading old frames (at most RESTART_WAIT_MS); the next write then starts the log over.
   */
  private async settle(session: NonNullable<SqliteWriter['maintaining']>): Promise<void> {
    const pass = await session.checkpointer.checkpoint();
    if (pass.logFrames < RESTART_LOG_FRAMES) return;
    const run = this.tail.then(async () => {
      const started = performance.now();
      await session.checkpointer.checkpoint({ restart: true });
      session.longestPauseMs = Math.max(session.longestPauseMs, performance.now() - started);
    });
    this.tail = run.catch(() => undefined);
    await run;
  }

  /** Automatic checkpoints back on, the thread stopped. */
  private async endMaintenance(session: NonNullable<SqliteWriter['maintaining']>): Promise<void> {
    if (this.maintaining !== session) return;
    this.maintaining = undefined;
    const db = this.db as unknown as { open?: boolean; pragma(source: string): unknown };
    // A connection closed meanwhile (the server stopping) has nothing to put back.
    if (db.open !== false) {
      db.pragma(`wal_autocheckpoint = ${session.autocheckpoint}`);
      try {
        if (session.tempStore !== null) db.pragma(`temp_store = ${session.tempStore}`);
      } catch {
        // Refused inside a transaction: left in memory, which only costs memory for large temporary data.
      }
    }
    await session.checkpointer.close();
  }

  /** A storage failure makes the server not ready and reaches the client as STORAGE_UNAVAILABLE; anything else stays itself. */
  private failure(error: unknown): unknown {
    const code = codeOf(error);
    if (!STORAGE_FAILURES.test(code)) return error;
    this.unhealthy(code);
    return new StorageError(`The database cannot store entries right now (${code}); nothing was stored`, ErrorCode.StorageUnavailable, { reason: code.replace(/^SQLITE_/, '').replace(/_.*$/, '') });
  }

  /** Not ready until a write succeeds again: a client's, or the probe's, tried every `probeIntervalMs`. */
  private unhealthy(code: string): void {
    this.health.failed(code);
    if (this.probing) return;
    const again = () => {
      this.probing = setTimeout(() => {
        if (this.health.ready) {
          this.probing = undefined;
          return;
        }
        this.transaction(probe).then(
          () => (this.probing = undefined),
          () => again(),
        );
      }, this.options.probeIntervalMs ?? 1000);
      this.probing.unref();
    };
    again();
  }

  /** Stops the probe (the server is shutting down). */
  close(): void {
    clearTimeout(this.probing);
    this.probing = undefined;
  }
}
