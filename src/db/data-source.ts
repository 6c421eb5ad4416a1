import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { DataSource, type Logger } from 'typeorm';
import type { SqliteSynchronous } from '../config.js';
import { AuditLog } from './entities/audit-log.entity.js';
import { ApiKey } from './entities/api-key.entity.js';
import { migrations } from './migrations/index.js';

export interface SqliteOptions {
  /** File path or `:memory:`. */
  database: string;
  /** @default 'FULL' */
  synchronous?: SqliteSynchronous;
  logger?: Logger;
}

/**
 * The DataSource options of the server. TypeORM sets neither the journal mode nor `synchronous`, and
 * better-sqlite3 falls back to different levels for a new and a reopened file, so both are set explicitly
 * on every connect.
 */
export function sqliteDataSourceOptions(options: SqliteOptions) {
  const synchronous = options.synchronous ?? 'FULL';
  return {
    type: 'better-sqlite3' as const,
    database: options.database,
    entities: [AuditLog, ApiKey],
    migrations,
    subscribers: [],
    synchronize: false,
    migrationsRun: false,
    logger: options.logger,
    logging: options.logger ? ('all' as const) : false,
    prepareDatabase: (db: { pragma: (source: string) => unknown }) => {
      // Also when the file was opened through these options alone (the TypeORM CLI via ormconfig.ts), and
      // before WAL mode creates the -wal and -shm files, which take the database file's mode.
      protectDatabaseFiles(options.database);
      if (options.database !== ':memory:') db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${synchronous}`);
      db.pragma('foreign_keys = ON');
      // What a statement deletes or overwrites is overwritten with zeros, so that an erased value leaves no
      // copy in free space (README, "Erasure"). Entries are only appended, so writes rarely free anything.
      db.pragma('secure_delete = ON');
    },
  };
}

export interface PostgresOptions {
  /** `postgres://user:password@host:port/database` (any libpq-style URL node-postgres accepts). */
  url: string;
  /** Connections for writes (reads have a pool of their own, see postgres/store.ts). @default 10 */
  poolSize?: number;
  logger?: Logger;
}

/** The server's DataSource options on PostgreSQL: the same entities and migrations as on SQLite. */
export function postgresDataSourceOptions(options: PostgresOptions) {
  return {
    type: 'postgres' as const,
    url: options.url,
    entities: [AuditLog, ApiKey],
    migrations,
    subscribers: [],
    synchronize: false,
    migrationsRun: false,
    poolSize: options.poolSize ?? 10,
    applicationName: 'auditql',
    logger: options.logger,
    logging: options.logger ? ('all' as const) : false,
  };
}

/** The server's database as DATABASE_URL names it. */
export function createServerDataSource(config: { database: string; dialect: 'sqlite' | 'postgres'; sqliteSynchronous?: SqliteSynchronous; poolSize?: number }): DataSource {
  if (config.dialect === 'postgres') return new DataSource(postgresDataSourceOptions({ url: config.database, poolSize: config.poolSize }));
  return createSqliteDataSource({ database: config.database, synchronous: config.sqliteSynchronous });
}

/**
 * The database holds every tenant's log: only its owner may read it. Folders created for it are 0700; the
 * file is created 0600 before SQLite opens it (SQLite would make it 0644), and an existing one, with its WAL
 * and shared-memory files, is narrowed to 0600. SQLite gives the WAL and SHM files the database file's mode
 * when it creates them. An existing folder is left as it is: it may be shared (`/var/lib`, `/tmp`).
 */
export function protectDatabaseFiles(database: string): void {
  if (database === ':memory:' || database.startsWith('file:')) return;
  mkdirSync(dirname(database), { recursive: true, mode: 0o700 });
  if (!existsSync(database)) closeSync(openSync(database, 'a', 0o600));
  for (const file of [database, `${database}-wal`, `${database}-shm`]) {
    if (existsSync(file)) chmodSync(file, 0o600);
  }
}

/** The server's SQLite DataSource on `options.database`, its folder created (0700) if missing. Not yet initialised. */
export function createSqliteDataSource(options: SqliteOptions): DataSource {
  protectDatabaseFiles(options.database);
  return new DataSource(sqliteDataSourceOptions(options));
}

/** Initialises the DataSource if needed and applies pending migrations (never `synchronize`). */
export async function openDatabase(dataSource: DataSource): Promise<DataSource> {
  if (!dataSource.isInitialized) await dataSource.initialize();
  await withMigrationLock(dataSource, () => dataSource.runMigrations({ transaction: 'each' }));
  return dataSource;
}

/**
 * Runs `work` (migrating) while no other process migrates the same PostgreSQL database: instances starting
 * together take turns (a session advisory lock), and the later ones find nothing left to do. Elsewhere it
 * just runs `work` (SQLite's write lock already serialises migrations).
 */
export async function withMigrationLock<T>(dataSource: DataSource, work: () => Promise<T>): Promise<T> {
  if (dataSource.options.type !== 'postgres') return work();
  const runner = dataSource.createQueryRunner('master');
  try {
    await runner.query(`SELECT pg_advisory_lock(${MIGRATION_LOCK[0]}, ${MIGRATION_LOCK[1]})`);
    try {
      return await work();
    } finally {
      await runner.query(`SELECT pg_advisory_unlock(${MIGRATION_LOCK[0]}, ${MIGRATION_LOCK[1]})`);
    }
  } finally {
    await runner.release();
  }
}

/** auditql's advisory-lock space ("AQL") and the key of migrations in it. */
const MIGRATION_LOCK = [0x41514c, 0] as const;
