import type { EntityManager, EntityMetadata, ObjectLiteral, QueryBuilder } from 'typeorm';
import type { ColumnMetadata } from 'typeorm/metadata/ColumnMetadata.js';
import { hydrateImage, imageColumns, type Image } from './snapshot.js';

/** A row as read from the database: its raw values by column database name, and its image. */
export interface ReadRow {
  raw: ObjectLiteral;
  image: Image;
}

/** The parts of TypeORM's write builders used to render their own WHERE clause (stable since 0.3.0). */
interface WriteBuilderInternals {
  expressionMap: { mainAlias?: { metadata: EntityMetadata } };
  createWhereExpression(): string;
  createCteExpression?(): string;
  createOrderByExpression?(): string;
  createLimitExpression?(): string;
  getTableName(tablePath: string): string;
  getMainTableName(): string;
  replacePropertyNamesForTheWholeQuery(statement: string): string;
  getParameters(): ObjectLiteral;
}

const LOCKING = new Set(['postgres', 'cockroachdb', 'mysql', 'mariadb', 'aurora-mysql']);
/** Drivers on which a failed statement aborts the whole transaction until a rollback. */
const ABORTS_ON_ERROR = new Set(['postgres', 'cockroachdb', 'aurora-postgres']);
/** Keys per read: far below every driver's bound-parameter limit (SQLite's old default was 999). */
const KEYS_PER_READ = 400;

function escaped(manager: EntityManager, name: string): string {
  return manager.connection.driver.escape(name);
}

/** The stored columns of an entity, each database name once. */
function selectList(manager: EntityManager, metadata: EntityMetadata): string {
  const names = new Set<string>();
  for (const column of imageColumns(metadata)) names.add(column.databaseName);
  for (const column of metadata.primaryColumns) names.add(column.databaseName);
  return [...names].map((name) => escaped(manager, name)).join(', ');
}

function tableOf(manager: EntityManager, metadata: EntityMetadata): string {
  return metadata.tablePath
    .split('.')
    .map((part) => (part === '' ? part : escaped(manager, part)))
    .join('.');
}

async function run(manager: EntityManager, metadata: EntityMetadata, sql: string, parameters: ObjectLiteral): Promise<ReadRow[]> {
  const driver = manager.connection.driver;
  // TypeORM 0.3 requires the native parameters argument (and reads it); 1.x dropped it.
  const escape = driver.escapeQueryWithParameters.bind(driver) as (sql: string, parameters: ObjectLiteral, native: ObjectLiteral) => [string, unknown[]];
  const [query, bound] = escape(sql, parameters, {});
  const rows = await guardedQuery(manager, query, bound);
  // Hydrated after the read, outside its savepoint: a column transformer that throws is not a failed
  // statement, and must not roll anything back.
  return rows.map((raw) => ({ raw, image: hydrateImage(metadata, driver, raw) }));
}

/** node-postgres' client, as TypeORM's PostgreSQL query runner holds it while connected. */
interface PgClient {
  query(text: string, values?: unknown[]): Promise<{ rows: ObjectLiteral[] }>;
}

let savepoints = 0;

/**
 * Runs a read that may fail (a shape of criteria nobody foresaw) so that its failure cannot harm the app's
 * transaction. On PostgreSQL a failed statement aborts the whole transaction, so the read runs inside a
 * savepoint of its own, and `SAVEPOINT`, the read and `RELEASE` are queued on the connection together, with
 * nothing between them: no statement of the app (nor another read of ours, running concurrently in the same
 * transaction) can fall inside the savepoint and be rolled back with it. If the read fails, what was queued
 * after it fails too (the transaction is aborted until the rollback), loudly, and `ROLLBACK TO` then undoes
 * nothing that succeeded. Other drivers keep the transaction usable after a failed SELECT.
 */
async function guardedQuery(manager: EntityManager, query: string, bound: unknown[]): Promise<ObjectLiteral[]> {
  const runner = manager.queryRunner;
  if (!runner?.isTransactionActive || !ABORTS_ON_ERROR.has(manager.connection.options.type)) return (await manager.query(query, bound)) as ObjectLiteral[];
  const name = `auditql_read_${++savepoints}`;
  const client = (runner as unknown as { databaseConnection?: PgClient }).databaseConnection;
  if (typeof client?.query !== 'function') {
    // A driver without node-postgres' queue (Aurora's Data API): one statement after the other.
    await runner.query(`SAVEPOINT ${name}`);
    try {
      const rows = (await runner.query(query, bound)) as ObjectLiteral[];
      await runner.query(`RELEASE SAVEPOINT ${name}`);
      return rows;
    } catch (error) {
      await runner.query(`ROLLBACK TO SAVEPOINT ${name}`);
      throw error;
    }
  }
  const queued = [client.query(`SAVEPOINT ${name}`), client.query(query, bound), client.query(`RELEASE SAVEPOINT ${name}`)] as const;
  const [saved, read, released] = await Promise.allSettled(queued);
  if (saved.status === 'fulfilled' && read.status === 'fulfilled' && released.status === 'fulfilled') return read.value.rows;
  if (saved.status === 'fulfilled') await client.query(`ROLLBACK TO SAVEPOINT ${name}`).then(() => client.query(`RELEASE SAVEPOINT ${name}`));
  throw read.status === 'rejected' ? read.reason : saved.status === 'rejected' ? saved.reason : (released as PromiseRejectedResult).reason;
}

/**
 * The rows an UPDATE or DELETE builder is about to touch: the builder renders its own WHERE (and, on MySQL,
 * ORDER BY / LIMIT) exactly as it will for the write — property paths turned into column names through the
 * entity's metadata (renamed columns, naming strategies, embedded columns, relation join columns), the
 * discriminator condition of a child entity, its parameters — and the same table is read with it. So the rows
 * read are the rows written, on every dialect TypeORM renders. Rows are locked where the driver can.
 */
export function readByWriteCriteria(manager: EntityManager, builder: QueryBuilder<ObjectLiteral>): Promise<ReadRow[]> {
  const b = builder as unknown as WriteBuilderInternals;
  const metadata = b.expressionMap.mainAlias!.metadata;
  const tail = b.replacePropertyNamesForTheWholeQuery(`${b.createWhereExpression()}${b.createOrderByExpression?.() ?? ''}${b.createLimitExpression?.() ?? ''}`);
  const lock = LOCKING.has(manager.connection.options.type) ? ' FOR UPDATE' : '';
  const sql = `${b.createCteExpression?.() ?? ''}SELECT ${selectList(manager, metadata)} FROM ${b.getTableName(b.getMainTableName())}${tail}${lock}`;
  return run(manager, metadata, sql, b.getParameters());
}

/**
 * Reads rows by key: `keys` hold raw database values by column database name (as read), and `columns` the
 * key columns (the primary key unless told).
 */
export async function readByKeys(manager: EntityManager, metadata: EntityMetadata, keys: ObjectLiteral[], columns: ColumnMetadata[] = metadata.primaryColumns): Promise<ReadRow[]> {
  if (keys.length === 0 || columns.length === 0) return [];
  const out: ReadRow[] = [];
  const head = `SELECT ${selectList(manager, metadata)} FROM ${tableOf(manager, metadata)} WHERE `;
  for (let start = 0; start < keys.length; start += KEYS_PER_READ) {
    const chunk = keys.slice(start, start + KEYS_PER_READ);
    const parameters: ObjectLiteral = {};
    let where: string;
    if (columns.length === 1) {
      parameters.k = chunk.map((key) => key[columns[0]!.databaseName]);
      where = `${escaped(manager, columns[0]!.databaseName)} IN (:...k)`;
    } else {
      where = chunk
        .map((key, i) => `(${columns.map((column, j) => {
          parameters[`k${i}_${j}`] = key[column.databaseName];
          return `${escaped(manager, column.databaseName)} = :k${i}_${j}`;
        }).join(' AND ')})`)
        .join(' OR ');
    }
    out.push(...(await run(manager, metadata, head + where, parameters)));
  }
  return out;
}

/** The key of an entity object (a value set, a saved entity) in database form, or undefined when it lacks one. */
export function keyOf(manager: EntityManager, columns: ColumnMetadata[], entity: ObjectLiteral): ObjectLiteral | undefined {
  const key: ObjectLiteral = {};
  for (const column of columns) {
    const value: unknown = column.getEntityValue(entity);
    if (value === undefined || value === null) return undefined;
    key[column.databaseName] = manager.connection.driver.preparePersistentValue(value, column);
  }
  return key;
}

/** The key of a row read from the database. */
export function rawKeyOf(columns: ColumnMetadata[], raw: ObjectLiteral): ObjectLiteral {
  return Object.fromEntries(columns.map((column) => [column.databaseName, raw[column.databaseName]]));
}

function keyValue(value: unknown): string {
  if (value instanceof Date) return value.toISOString();
  if (Buffer.isBuffer(value)) return value.toString('hex');
  return String(value);
}

/** A key in database form (by column database name) as a string, to match rows by key. */
export function keyString(columns: ColumnMetadata[], raw: ObjectLiteral): string {
  return JSON.stringify(columns.map((column) => keyValue(raw[column.databaseName])));
}
