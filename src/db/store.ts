import { readLocked, writeLocked } from './transaction.js';
import { defaultStorage } from '../config.js';
import type { DataSource, EntityMetadata, ObjectLiteral } from 'typeorm';
import { ReadPool, queryTimeout, type ReadOptions } from './read-pool.js';
import { dialectOf, numberedPlaceholders, runAsync, runSync, type Dialect, type Statement, type SyncDatabase } from './sql.js';
import { SqliteWriter } from './sqlite-writer.js';
import { StorageHealth } from './storage-health.js';
import { postgresStore } from './postgres/store.js';

export type { ReadOptions } from './read-pool.js';
export type { AuditStore, StoreOptions } from './store-types.js';
import type { AuditStore, StoreOptions } from './store-types.js';

export const defaultStoreOptions: StoreOptions = { ...defaultStorage, ownsConnection: false };

export function rawHandle(dataSource: DataSource): SyncDatabase | undefined {
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
    const file = isMemory(dataSource) ? undefined : (dataSource.options as { database: string }).database;
    const writer = new SqliteWriter(db, health, { ...settings, file });
    const pool = file === undefined
      ? undefined
      : new ReadPool({ file, workers: settings.readWorkers, timeoutMs: settings.readTimeoutMs, perPrincipal: settings.readsPerPrincipal, waitingPerPrincipal: settings.readsWaitingPerPrincipal ?? 16 });
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
      streamWritten: pool
        ? (statement, rowWriter, batch, readOptions) => {
            settings.onRead?.(statement);
            return pool.streamWritten(statement, rowWriter, batch, readOptions);
          }
        : undefined,
      write: (work, options) => writer.transaction(work, options),
      maintenance: () => writer.maintenance(),
      close: async () => {
        writer.close();
        await pool?.close();
      },
    };
  }
  if (dialect === 'postgres') return postgresStore(dataSource, health, settings);
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
  // The sqlite3 driver shares one connection between all transactions: a write holds it alone and reads wait
  // for it, or a read would see another request's uncommitted rows. The lock is the DataSource's own
  // (transaction.ts), the one an app's `writeTransaction` takes, so the app's transactions and the server's
  // writes on a shared connection never run inside each other either.
  const sqlite = dialect === 'sqlite';
  const reading = <T>(run: () => Promise<T>) => (sqlite ? readLocked(dataSource, run) : run());
  const writing = <T>(run: () => Promise<T>) => (sqlite ? writeLocked(dataSource, run) : run());
  const read = async <Row>(statement: Statement, readOptions: ReadOptions = {}): Promise<Row[]> => {
    settings.onRead?.(statement);
    const budget = readOptions.timeoutMs ?? settings.readTimeoutMs;
    const text = dialect === 'postgres' ? numberedPlaceholders(statement.sql) : statement.sql;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(queryTimeout(budget)), budget);
    });
    try {
      return (await Promise.race([reading(() => dataSource.query(text, [...statement.params])), timeout])) as Row[];
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
    async write(work, options) {
      const result = await writing(() => dataSource.transaction((manager) => runAsync(manager, work())));
      if (!options?.background) health.succeeded();
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

