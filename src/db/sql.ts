import type { DataSource, EntityManager } from 'typeorm';

/** The SQL dialects auditql writes. */
export type Dialect = 'sqlite' | 'postgres' | 'mysql';

export function dialectOf(dataSource: DataSource): Dialect {
  const type: string = dataSource.options.type;
  if (type === 'sqlite' || type === 'better-sqlite3') return 'sqlite';
  if (type === 'postgres') return 'postgres';
  if (type === 'mysql' || type === 'mariadb') return 'mysql';
  throw new Error(`auditql: the ${type} driver is not supported (SQLite, PostgreSQL, MySQL and MariaDB are)`);
}

/** One statement with positional parameters written as `?`; runners translate them for the dialect. */
export interface Statement {
  sql: string;
  params: readonly unknown[];
}

/** What a statement hands back: its rows, or for writes the affected row count and the last inserted id. */
export interface StatementResult<Row = Record<string, unknown>> {
  rows: Row[];
  changes: number;
  lastInsertId: number | null;
}

/**
 * A unit of work inside one transaction, written once and run by two kinds of runner:
 *
 * - on SQLite, `runSync` executes it synchronously on a better-sqlite3 handle, so that the whole
 *   transaction happens in one turn of the event loop. Nothing else running in the process — another
 *   request, or the app's own TypeORM code on a shared connection — can slip a statement into it, and it
 *   never waits on a lock while the event loop is held (TypeORM on SQLite shares one connection between
 *   all transactions, typeorm#8668: an async transaction there lets unrelated work join it);
 * - on PostgreSQL and MySQL, or inside the app's own transaction, `runAsync` awaits each statement
 *   through a TypeORM EntityManager.
 *
 * The work yields each statement and receives its result, like `await` would.
 */
export type Work<T> = Generator<Statement, T, StatementResult>;

export function statement(sql: string, params: readonly unknown[] = []): Statement {
  return { sql, params };
}

/** Shorthand inside `Work`: `const { rows } = yield* exec(sql, params)`. */
export function* exec<Row = Record<string, unknown>>(sql: string, params: readonly unknown[] = []): Generator<Statement, StatementResult<Row>, StatementResult> {
  return (yield statement(sql, params)) as StatementResult<Row>;
}

/** The part of a better-sqlite3 `Database` the runner uses. */
export interface SyncDatabase {
  prepare(sql: string): {
    reader: boolean;
    all(...params: unknown[]): unknown[];
    run(...params: unknown[]): { changes: number; lastInsertRowid: number | bigint };
  };
  readonly inTransaction: boolean;
  exec(sql: string): unknown;
}

/** better-sqlite3 binds numbers, strings, bigints, buffers and null; booleans become 0/1 as SQLite stores them. */
function bindable(value: unknown): unknown {
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (value instanceof Date) return value.getTime();
  return value === undefined ? null : value;
}

type Prepared = ReturnType<SyncDatabase['prepare']>;
const preparedByDatabase = new WeakMap<SyncDatabase, Map<string, Prepared>>();
const PREPARED_PER_DATABASE = 64;

/**
 * `db.prepare(sql)`, kept per database and statement text. Writes repeat a handful of statements (claim the
 * head, insert N entries, move the head), and preparing one costs as much as running it: the INSERT of 500
 * entries takes milliseconds to compile. SQLite re-prepares a kept statement by itself after a schema change.
 */
function preparedFor(db: SyncDatabase, sql: string): Prepared {
  let kept = preparedByDatabase.get(db);
  if (!kept) preparedByDatabase.set(db, (kept = new Map()));
  let prepared = kept.get(sql);
  if (prepared === undefined) {
    prepared = db.prepare(sql);
    if (kept.size >= PREPARED_PER_DATABASE) kept.delete(kept.keys().next().value!);
    kept.set(sql, prepared);
  }
  return prepared;
}

export function runSync<T>(db: SyncDatabase, work: Work<T>): T {
  let step = work.next();
  while (!step.done) {
    const { sql, params } = step.value;
    const prepared = preparedFor(db, sql);
    const bound = params.map(bindable);
    let result: StatementResult;
    if (prepared.reader) {
      // An array binds as the list of anonymous parameters: no spread of thousands of arguments (a 500-entry
      // INSERT has 12,000) onto the stack.
      result = { rows: prepared.all(bound) as Array<Record<string, unknown>>, changes: 0, lastInsertId: null };
    } else {
      const info = prepared.run(bound);
      result = { rows: [], changes: info.changes, lastInsertId: Number(info.lastInsertRowid) };
    }
    step = work.next(result);
  }
  return step.value;
}

/** `?` → `$1, $2, …` for PostgreSQL (statements never carry `?` inside string literals). */
export function numberedPlaceholders(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

/** The better-sqlite3 handle behind a DataSource of the `better-sqlite3` driver; undefined for every other driver. */
export function syncHandleOf(dataSource: DataSource): SyncDatabase | undefined {
  if (dataSource.options.type !== 'better-sqlite3') return undefined;
  const handle = (dataSource.driver as unknown as { databaseConnection?: SyncDatabase }).databaseConnection;
  return typeof handle?.prepare === 'function' ? handle : undefined;
}

/**
 * Runs `work` inside the transaction `manager` has open. On better-sqlite3 the statements go straight to
 * the connection, synchronously: TypeORM's own query path (events, logging, a promise per statement) cost
 * more than the statements (measured on audited saves); the transaction is the same one, since SQLite has
 * one per connection. Every other driver goes through TypeORM.
 */
export function runInTransaction<T>(manager: EntityManager, work: Work<T>): Promise<T> {
  const handle = syncHandleOf(manager.connection);
  if (handle?.inTransaction && manager.queryRunner?.isTransactionActive) {
    try {
      return Promise.resolve(runSync(handle, work));
    } catch (error) {
      return Promise.reject(error);
    }
  }
  return runAsync(manager, work);
}

export async function runAsync<T>(manager: EntityManager, work: Work<T>): Promise<T> {
  const runner = manager.queryRunner;
  if (!runner) throw new Error('auditql: runAsync needs a transactional EntityManager');
  const dialect = dialectOf(manager.connection);
  let step = work.next();
  while (!step.done) {
    const { sql, params } = step.value;
    const result = await runner.query(dialect === 'postgres' ? numberedPlaceholders(sql) : sql, params as unknown[], true);
    step = work.next(toResult(result));
  }
  return step.value;
}

/**
 * TypeORM's structured query result, made uniform: rows (SELECT, RETURNING), affected rows, and the last
 * inserted id (SQLite drivers put it in `raw`, MySQL in `raw.insertId`).
 */
function toResult(result: { records?: unknown[]; affected?: number; raw?: unknown }): StatementResult {
  const raw = result.raw as { insertId?: number } | number | bigint | undefined;
  const lastInsertId = typeof raw === 'number' || typeof raw === 'bigint' ? Number(raw) : raw && typeof raw === 'object' && typeof raw.insertId === 'number' ? raw.insertId : null;
  return { rows: (result.records ?? []) as Array<Record<string, unknown>>, changes: result.affected ?? 0, lastInsertId };
}

/**
 * `manager.query` for SQL written with `?` placeholders, on any dialect (PostgreSQL numbers them). For
 * statements outside a `Work`.
 */
export function queryWith<T = unknown>(manager: EntityManager, sql: string, params: readonly unknown[] = []): Promise<T> {
  return manager.query(dialectOf(manager.connection) === 'postgres' ? numberedPlaceholders(sql) : sql, [...params]) as Promise<T>;
}
