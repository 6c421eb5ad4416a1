import type { ReadOptions, RowWriterModule, WrittenBatch, WrittenChunk } from './read-pool.js';
import type { Dialect, Statement, Work } from './sql.js';
import type { StorageHealth } from './storage-health.js';

/** How the server runs statements (see `AuditStore`). */
export interface StoreOptions {
  /** Reader threads for SQLite files; read connections on PostgreSQL. @default 2 */
  readWorkers: number;
  /** Longest one read may take before it is cancelled with QUERY_TIMEOUT. @default 5000 */
  readTimeoutMs: number;
  /** Reads of one principal running at once (its others wait). @default 1 */
  readsPerPrincipal: number;
  /** Reads of one principal that may wait; more are refused at once with RATE_LIMITED. @default 16 */
  readsWaitingPerPrincipal?: number;
  /** Longest a write waits for a lock held by another connection. @default 10000 */
  lockWaitMs: number;
  /**
   * The server owns the DataSource's connection (it runs the server on its own database): its writes may
   * then stop SQLite's busy handler from blocking the event loop. An app's DataSource keeps its settings.
   * @default false
   */
  ownsConnection: boolean;
  /** Called with every read statement before it runs (statement counts in tests, tracing). */
  onRead?: (statement: Statement) => void;
}

export interface WriteOptions {
  /**
   * The transaction need not survive a power loss: it is committed without waiting for the disk (SQLite
   * `synchronous = NORMAL` for it, PostgreSQL `synchronous_commit = off`). Still atomic and consistent; for
   * maintenance whose lost transaction is simply done again (a retention purge's batches), never for
   * anything acknowledged to a client. The next durable commit makes it durable too.
   */
  relaxed?: boolean;
  /**
   * A write the server makes by itself (the search indexer catching up). Its failure makes the server not
   * ready like any other; its success does not make it ready again: a small row that still fits says nothing
   * about the entries clients are being refused (a client's write or the storage probe decides that).
   */
  background?: boolean;
}

/**
 * A run of heavy maintenance writes (a retention purge, an erasure) on a SQLite file. Their batches write
 * many pages each (a removed entry touches a leaf of every index), and the commit that finds the log past
 * its limit would copy it back into the file and wait for the disk while holding the writer. During the
 * run, a thread of its own does that between the batches: call `settle()` after each batch (it resolves
 * when the log is copied; writes go on meanwhile) and `end()` once at the end.
 */
export interface WalMaintenance {
  settle(): Promise<void>;
  end(): Promise<void>;
  /** The longest time writes were held back so that the log could be started over, in ms. */
  longestPauseMs(): number;
}

/**
 * Where the server's use cases read and write. Services build statements (with TypeORM's query builder or
 * by hand) and hand them here; the store decides how they run on the database at hand:
 *
 * - SQLite file (better-sqlite3): reads on reader threads with their own read-only connections and a time
 *   budget; writes as synchronous `BEGIN IMMEDIATE` transactions on the DataSource's connection
 *   (sqlite-writer.ts).
 * - SQLite in memory: the same writes; reads on the one connection (a second connection would see another
 *   database), so without a time budget.
 * - PostgreSQL: reads on a pool of their own with `statement_timeout` as the budget, writes as TypeORM
 *   transactions (postgres/store.ts).
 * - Anything else (MySQL, or SQLite through the `sqlite3` driver): TypeORM transactions and queries on the
 *   DataSource; on the `sqlite3` driver's single connection, one transaction at a time.
 */
export interface AuditStore {
  readonly dialect: Dialect;
  readonly health: StorageHealth;
  read<Row = Record<string, unknown>>(statement: Statement, options?: ReadOptions): Promise<Row[]>;
  /** Rows in batches, read as the consumer asks for them (exports, verification, replays). */
  stream<Row = Record<string, unknown>>(statement: Statement, batchSize: number, options?: ReadOptions): AsyncIterable<Row[]>;
  /**
   * Rows of one statement as text written where they are read (SQLite file: on the reader thread, see
   * ReadPool.streamWritten), chunk by chunk as the consumer asks for them. Absent where rows can only come
   * to the server as objects (PostgreSQL, SQLite in memory): use `stream` there.
   */
  streamWritten?(statement: Statement, writer: RowWriterModule, batch: WrittenBatch, options?: ReadOptions): AsyncIterable<WrittenChunk>;
  /** Runs `work()` as one transaction and resolves once it has committed. */
  write<T>(work: () => Work<T>, options?: WriteOptions): Promise<T>;
  /** SQLite file: starts a run of heavy maintenance writes (see WalMaintenance). Absent or undefined elsewhere. */
  maintenance?(): WalMaintenance | undefined;
  /** Stops the reader threads; leaves the DataSource open. */
  close(): Promise<void>;
}

