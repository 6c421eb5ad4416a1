import { Semaphore } from 'async-mutex';
import { defaultStorage } from '../config.js';
import type { DataSource, EntityMetadata, ObjectLiteral } from 'typeorm';
import { ReadPool, queryTimeout, type ReadOptions } from './read-pool.js';
import { dialectOf, numberedPlaceholders, runAsync, runSync, type Dialect, type Statement, type SyncDatabase, type Work } from './sql.js';
import { SqliteWriter } from './sqlite-writer.js';
import { StorageHealth } from './storage-health.js';

export type { ReadOptions } from './read-pool.js';

/** How the server runs statements (see `AuditStore`). */
export interface StoreOptions {
  /** Reader threads for SQLite files. @default 2 */
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

export const defaultStoreOptions: StoreOptions = { ...defaultStorage, ownsConnection: false };

/**
 * Where the server's use cases read and write. Services build statements (with TypeORM's query builder or
 * by hand) and hand them here; the store decides how they run on the database at hand:
 *
 * - SQLite file (better-sqlite3): reads on reader threads with their own read-only connections and a time
 *   budget; writes as synchronous `BEGIN IMMEDIATE` transactions on the DataSource's connection
 *   (sqlite-writer.ts).
 * - SQLite in memory: the same writes; reads on the one connection (a second connection would see another
 *   database), so without a time budget.
 * - Anything else (PostgreSQL, MySQL, or SQLite through the `sqlite3` driver): TypeORM transactions and
 *   queries on the DataSource; on the `sqlite3` driver's single connection, one transaction at a time.
 */
export interface AuditStore {
  readonly dialect: Dialect;
  readonly health: StorageHealth;
  read<Row = Record<string, unknown>>(statement: Statement, options?: ReadOptions): Promise<Row[]>;
  /** Rows in batches, read as the consumer asks for them (exports, verification, replays). */
  stream<Row = Record<string, unknown>>(statement: Statement, batchSize: number, options?: ReadOptions): AsyncIterable<Row[]>;
  /** Runs `work()` as one transaction and resolves once it has committed. */
  write<T>(work: () => Work<T>): Promise<T>;
  /** Stops the reader threads; leaves the DataSource open. */
  close(): Promise<void>;
}

function rawHandle(dataSource: DataSource): SyncDatabase | undefined {
  if (dataSource.options.type !== 'better-sqlite3') return undefined;
  return (dataSource.driver as unknown as { databaseConnection: SyncDatabase }).databaseConnection;
}

function isMemory(dataSource: DataSource): boolean {
  const database = (dataSource.options as { database?: unknown }).database;
  return typeof database !== 'string' || database === ':memory:' || database.startsWith('file::memory:');
}

export function createStore(dataSource: DataSource, options: Partial<StoreOptions> = {}): AuditStore {
  const settings = { ...defaultStoreOptions, ...options };
  const health = new StorageHealth();
  const dialect = dialectOf(dataSource);
  const db = rawHandle(dataSource);
  if (db) {
    // better-sqlite3 waits for a busy lock synchronously, freezing the event loop; the writer backs off
    // asynchronously instead. Only on a connection the server owns: an app's keeps its own settings.
    if (settings.ownsConnection) (db as unknown as { pragma(source: string): unknown }).pragma('busy_timeout = 0');
    const writer = new SqliteWriter(db, health, settings);
    const pool = isMemory(dataSource)
      ? undefined
      : new ReadPool({ file: (dataSource.options as { database: string }).database, workers: settings.readWorkers, timeoutMs: settings.readTimeoutMs, perPrincipal: settings.readsPerPrincipal, waitingPerPrincipal: settings.readsWaitingPerPrincipal ?? 16 });
    return {
      dialect,
      health,
      read: (statement, readOptions) => {
        settings.onRead?.(statement);
        // The reader threads have connections of their own; a closed DataSource still means a closed store.
        if (!dataSource.isInitialized) return Promise.reject(new Error('auditql: the DataSource has been closed'));
        return pool ? pool.all(statement, readOptions) : Promise.resolve(readNow(db, statement));
      },
      stream: (statement, size, readOptions) => {
        settings.onRead?.(statement);
        return pool ? pool.stream(statement, size, readOptions) : batches(readNow(db, statement), size);
      },
      write: (work) => writer.transaction(work),
      close: async () => {
        writer.close();
        await pool?.close();
      },
    };
  }
  return dataSourceStore(dataSource, dialect, health, settings);
}

function readNow<Row>(db: SyncDatabase, statement: Statement): Row[] {
  return runSync(db, (function* () {
    return (yield statement).rows as Row[];
  })());
}

async function* batches<Row>(rows: Row[], size: number): AsyncGenerator<Row[]> {
  for (let i = 0; i < rows.length; i += size) yield rows.slice(i, i + size);
}

function dataSourceStore(dataSource: DataSource, dialect: Dialect, health: StorageHealth, settings: StoreOptions): AuditStore {
  // The sqlite3 driver shares one connection between all transactions: one statement or transaction at a
  // time, or a read would see another request's uncommitted rows.
  const serial = dialect === 'sqlite' ? new Semaphore(1) : undefined;
  const exclusive = <T>(run: () => Promise<T>) => (serial ? serial.runExclusive(run) : run());
  const read = async <Row>(statement: Statement, readOptions: ReadOptions = {}): Promise<Row[]> => {
    settings.onRead?.(statement);
    const budget = readOptions.timeoutMs ?? settings.readTimeoutMs;
    const text = dialect === 'postgres' ? numberedPlaceholders(statement.sql) : statement.sql;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(queryTimeout(budget)), budget);
    });
    try {
      return (await Promise.race([exclusive(() => dataSource.query(text, [...statement.params])), timeout])) as Row[];
    } finally {
      clearTimeout(timer);
    }
  };
  return {
    dialect,
    health,
    read,
    async *stream<Row>(statement: Statement, size: number, readOptions?: ReadOptions) {
      yield* batches(await read<Row>(statement, readOptions), size);
    },
    async write(work) {
      const result = await exclusive(() => dataSource.transaction((manager) => runAsync(manager, work())));
      health.succeeded();
      return result;
    },
    close: async () => undefined,
  };
}

/** Entities from raw rows (`SELECT a.*`), converted the way TypeORM would (JSON, transformers, types). */
export function hydrate<T extends ObjectLiteral>(dataSource: DataSource, metadata: EntityMetadata, rows: Array<Record<string, unknown>>): T[] {
  const driver = dataSource.driver;
  return rows.map((row) => {
    const entity = metadata.create() as T;
    for (const column of metadata.columns) {
      if (!(column.databaseName in row)) continue;
      column.setEntityValue(entity, driver.prepareHydratedValue(row[column.databaseName], column));
    }
    return entity;
  });
}

