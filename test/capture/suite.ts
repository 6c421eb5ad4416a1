import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MoreThan, type DataSource, type EntityMetadata, type ObjectLiteral } from 'typeorm';
import type { ColumnMetadata } from 'typeorm/metadata/ColumnMetadata.js';
import type { EmbeddedMetadata } from 'typeorm/metadata/EmbeddedMetadata.js';
import { createAuditSubscriber } from '../../src/audit/capture.subscriber.js';
import type { CaptureWarning } from '../../src/audit/options.js';
import { AuditLog } from '../../src/db/entities/audit-log.entity.js';
import { migrations } from '../../src/db/migrations/index.js';
import type { OpenDatabase, TestDatabases } from './databases.js';
import { defineShapes, type Shape } from './shapes.js';

/**
 * Every write path TypeORM has, run on every shape of entity, twice: on a DataSource audited by auditql and
 * on the same schema without auditing. Each write must behave exactly alike on both (same result or same
 * error, same rows afterwards), and on the audited side the entries must tell what happened: for each row
 * that changed, a chain of entries from its state before (or none) to its state after (or none), read
 * against the database rows themselves; one transaction id per write, never reused.
 *
 * Written once and run from several places (TypeORM 1.x + better-sqlite3 here, TypeORM 0.3 + sqlite3 in
 * test/compat, PostgreSQL and MariaDB when they are reachable) through the `TestDatabases` factory.
 */
export function describeCaptureSuite(databases: TestDatabases): void {
  const { shapes, marker } = defineShapes(databases.dialect);
  for (const shape of shapes) {
    describe(`${databases.label}: ${shape.name}`, () => {
      let audited: OpenDatabase;
      let plain: OpenDatabase;
      const warnings: CaptureWarning[] = [];
      const transactions = new Set<string>();
      let lastEntry = 0;

      beforeAll(async () => {
        const entities = [...shape.entities, marker];
        plain = await databases.open({ entities, namingStrategy: shape.namingStrategy });
        audited = await databases.open({
          entities: [...entities, AuditLog],
          migrations,
          subscribers: [createAuditSubscriber({ onWarning: (warning) => warnings.push(warning) })],
          namingStrategy: shape.namingStrategy,
        });
        await audited.dataSource.runMigrations();
        // The app's own tables, as the migration TypeORM would generate for these entities.
        const schema = await plain.dataSource.driver.createSchemaBuilder().log();
        for (const ds of [plain.dataSource, audited.dataSource]) {
          for (const statement of schema.upQueries) await ds.query(statement.query, statement.parameters);
          await ds.getRepository(marker).save(Array.from({ length: 12 }, (_, i) => ({ label: shape.text.of(i + 1), kind: `pick${i + 1}` })));
          for (const seed of shape.seed ?? []) await ds.getRepository(seed.target).save(seed.rows);
        }
        lastEntry = (await audited.dataSource.getRepository(AuditLog).maximum('id')) ?? 0;
      });

      afterAll(async () => {
        await audited?.drop();
        await plain?.drop();
      });

      for (const operation of operationsOf(shape)) {
        it(operation.name, async () => {
          const before = await snapshot(audited.dataSource, shape);
          const outcome = await attempt(() => operation.run(audited.dataSource));
          const expected = await attempt(() => operation.run(plain.dataSource));
          expect(comparable(outcome), 'the write behaves as without auditing').toEqual(comparable(expected));
          const after = await snapshot(audited.dataSource, shape);
          expect(tableContents(after), 'the rows are as without auditing').toEqual(tableContents(await snapshot(plain.dataSource, shape)));

          const entries = await audited.dataSource.getRepository(AuditLog).find({ where: { id: MoreThan(lastEntry) }, order: { id: 'ASC' } });
          lastEntry = entries.at(-1)?.id ?? lastEntry;
          expect(warnings.splice(0), 'no partial capture').toEqual([]);
          checkEntries(entries, before, after, operation.kinds ?? ['update']);
          // A write that succeeds and changes no row would check nothing above.
          if (!outcome.error && !operation.mayChangeNothing) expect(changedRows(before, after), 'the write changes a row').toBeGreaterThan(0);

          const ids = new Set(entries.map((entry) => entry.transactionId));
          expect(ids.size, 'one transaction id per write').toBeLessThanOrEqual(1);
          for (const id of ids) {
            expect(id).toEqual(expect.any(String));
            expect(transactions.has(id!), 'a transaction id is never reused').toBe(false);
            transactions.add(id!);
          }
        });
      }
    });
  }
}

interface Operation {
  name: string;
  run(ds: DataSource): Promise<unknown>;
  /** The actions allowed for rows that changed but were neither created nor deleted. */
  kinds?: string[];
  /** The write may succeed without changing a row (on one TypeORM version or another). */
  mayChangeNothing?: boolean;
}

function operationsOf(shape: Shape): Operation[] {
  const repo = (ds: DataSource) => ds.getRepository(shape.target);
  const find = (ds: DataSource, i: number) => repo(ds).findOneByOrFail(shape.criteria(i));
  const ops: Operation[] = [
    { name: 'save() of a new entity', run: (ds) => repo(ds).save(repo(ds).create(shape.make(1))) },
    { name: 'save() of another new entity (its own transaction)', run: (ds) => repo(ds).save(repo(ds).create(shape.make(2))) },
    { name: 'save() of several new entities', run: (ds) => repo(ds).save([3, 4, 5].map((i) => repo(ds).create(shape.make(i)))) },
    // Row 12 is for the query-builder delete whose WHERE reads another table, nothing else touches it.
    { name: 'insert() of several rows', run: (ds) => repo(ds).insert([shape.make(6), shape.make(7), shape.make(12)]) },
    {
      name: 'save() of a loaded entity with changes',
      run: async (ds) => repo(ds).save(Object.assign(await find(ds, 1), shape.change(1))),
    },
    {
      name: 'save() of a partial entity (primary key and one field)',
      run: async (ds) => {
        const id = ds.getMetadata(shape.target).getEntityIdMap(await find(ds, 1))!;
        return repo(ds).save({ ...id, [shape.text.property]: `${shape.text.of(1)}~` });
      },
    },
    { name: 'update() by criteria', run: (ds) => repo(ds).update(shape.criteria(2), shape.change(2)) },
    {
      name: 'query-builder update with parameters',
      run: (ds) => ds.createQueryBuilder().update(shape.target).set(shape.change(3)).where(shape.where.sql, shape.where.params(3)).execute(),
    },
    {
      name: 'query-builder update whose WHERE reads another table',
      run: (ds) =>
        ds
          .createQueryBuilder()
          .update(shape.target)
          .set(shape.change(4))
          .where(`${shape.text.property} IN (SELECT m.label FROM marker m WHERE m.kind = :kind)`, { kind: 'pick4' })
          .execute(),
    },
  ];
  if (shape.numeric) {
    ops.push(
      { name: 'increment()', run: (ds) => repo(ds).increment(shape.criteria(5), shape.numeric!, 3) },
      { name: 'decrement()', run: (ds) => repo(ds).decrement(shape.criteria(5), shape.numeric!, 1) },
    );
  }
  if (shape.conflict) {
    ops.push(
      {
        name: 'upsert() of an existing and a new row',
        run: (ds) => repo(ds).upsert([merged(ds.getMetadata(shape.target).embeddeds, shape.make(1), shape.change(5)), shape.make(8)], shape.conflict!),
        kinds: ['update'],
      },
      { name: 'query-builder insert orIgnore() of an existing and a new row', run: (ds) => ds.createQueryBuilder().insert().into(shape.target).values([shape.make(1), shape.make(11)]).orIgnore().execute() },
    );
  }
  if (shape.softDelete) {
    ops.push(
      { name: 'softDelete() by criteria', run: (ds) => repo(ds).softDelete(shape.criteria(6)), kinds: ['softDelete'] },
      { name: 'restore() by criteria', run: (ds) => repo(ds).restore(shape.criteria(6)), kinds: ['restore'] },
      // TypeORM 1.x matches no row here; 0.3 bumps the version and update date of the row: entries iff it changed.
      { name: 'restore() of a row that is not deleted', run: (ds) => repo(ds).restore(shape.criteria(6)), kinds: ['restore'], mayChangeNothing: true },
      { name: 'softRemove() of a loaded entity', run: async (ds) => repo(ds).softRemove(await find(ds, 7)), kinds: ['softDelete'] },
      {
        name: 'recover() of a soft-removed entity',
        run: async (ds) => repo(ds).recover(await repo(ds).findOneOrFail({ where: shape.criteria(7), withDeleted: true })),
        kinds: ['restore'],
      },
    );
  }
  ops.push(
    { name: 'delete() by criteria', run: (ds) => repo(ds).delete(shape.criteria(6)) },
    { name: 'query-builder delete with parameters', run: (ds) => ds.createQueryBuilder().delete().from(shape.target).where(shape.where.sql, shape.where.params(7)).execute() },
    {
      name: 'query-builder delete whose WHERE reads another table',
      run: (ds) =>
        ds
          .createQueryBuilder()
          .delete()
          .from(shape.target)
          .where(`${shape.text.property} IN (SELECT m.label FROM marker m WHERE m.kind = :kind)`, { kind: 'pick12' })
          .execute(),
    },
    { name: 'remove() of a loaded entity', run: async (ds) => repo(ds).remove(await find(ds, 2)) },
    {
      name: 'several writes in one transaction',
      run: (ds) =>
        ds.transaction(async (manager) => {
          const inner = manager.getRepository(shape.target);
          await inner.save(inner.create(shape.make(9)));
          if (shape.numeric) await inner.increment(shape.criteria(4), shape.numeric, 5);
          await inner.delete(shape.criteria(9));
        }),
    },
    {
      name: 'a transaction that rolls back',
      run: (ds) =>
        ds.transaction(async (manager) => {
          const inner = manager.getRepository(shape.target);
          await inner.update(shape.criteria(4), shape.change(1));
          await inner.save(inner.create(shape.make(10)));
          throw new Error('rolled back on purpose');
        }),
    },
    ...(shape.extra ?? []),
  );
  return ops;
}

/** `change` applied to `row`, embedded values merged (a change of one embedded column keeps the others; JSON values are replaced). */
function merged(embeddeds: EmbeddedMetadata[], row: ObjectLiteral, change: ObjectLiteral): ObjectLiteral {
  const out: ObjectLiteral = { ...row };
  for (const [key, value] of Object.entries(change)) {
    const embedded = embeddeds.find((e) => e.propertyName === key);
    const base: unknown = out[key];
    out[key] = embedded && typeof base === 'object' && base && typeof value === 'object' && value ? merged(embedded.embeddeds, base, value) : value;
  }
  return out;
}

async function attempt(run: () => Promise<unknown>): Promise<{ value?: unknown; error?: string }> {
  try {
    return { value: await run() };
  } catch (error) {
    // The two sides run on databases of different names, which server errors may quote.
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return { error: message.replace(/auditql_[0-9a-f]{16}/g, '<database>') };
  }
}

/** Generated timestamps differ between the two databases; everything else must be equal. */
function comparable(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, function (this: ObjectLiteral, key) {
    const original: unknown = this[key];
    return original instanceof Date ? '<date>' : original;
  }) ?? 'null');
}

interface Table {
  metadata: EntityMetadata;
  rows: Map<string, ObjectLiteral>;
}
type Snapshot = Map<string, Table>;

/** The columns an image holds (see snapshot.ts: tree bookkeeping columns and virtual properties left out). */
function columnsOf(metadata: EntityMetadata): ColumnMetadata[] {
  const seen = new Set<string>();
  return metadata.columns.filter((c) => {
    if (c.isVirtualProperty || c.isMaterializedPath || c.isNestedSetLeft || c.isNestedSetRight || seen.has(c.propertyPath)) return false;
    seen.add(c.propertyPath);
    return true;
  });
}

function resourceIdOf(metadata: EntityMetadata, raw: ObjectLiteral): string {
  const parts = metadata.primaryColumns.map((c) => [c.propertyPath, norm(c, raw[c.databaseName])] as const);
  if (parts.length === 1) return String(parts[0]![1]);
  return JSON.stringify(Object.fromEntries([...parts].sort(([a], [b]) => (a < b ? -1 : 1))));
}

/** Every row of every table of the shape, read with plain SQL, keyed by the id an entry would carry. */
async function snapshot(ds: DataSource, shape: Shape): Promise<Snapshot> {
  const target = ds.getMetadata(shape.target);
  const out: Snapshot = new Map();
  for (const metadata of ds.entityMetadatas) {
    // Many-to-many junction tables are recorded like any table; a closure table's rows are tree bookkeeping (not recorded).
    if (metadata.target === AuditLog || metadata.tableType === 'closure-junction') continue;
    const chosen = metadata.tablePath === target.tablePath ? target : metadata.parentEntityMetadata ? undefined : metadata;
    if (!chosen || out.has(chosen.tablePath)) continue;
    const table = chosen.tablePath.split('.').map((part) => ds.driver.escape(part)).join('.');
    const rows = (await ds.query(`SELECT * FROM ${table}`)) as ObjectLiteral[];
    out.set(chosen.tablePath, { metadata: chosen, rows: new Map(rows.map((raw) => [resourceIdOf(chosen, raw), raw])) });
  }
  return out;
}

function tableContents(snap: Snapshot): unknown {
  return Object.fromEntries(
    [...snap].map(([name, table]) => [
      name,
      [...table.rows.entries()]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([, raw]) =>
          Object.fromEntries(
            table.metadata.columns.map((c) => [c.databaseName, c.isCreateDate || c.isUpdateDate || c.isDeleteDate ? raw[c.databaseName] != null : norm(c, raw[c.databaseName])]),
          ),
        ),
    ]),
  );
}

const TIMES = new Set(['datetime', 'timestamp', 'timestamptz', 'timestamp with time zone', 'timestamp without time zone']);
const NUMBERS = new Set(['integer', 'int', 'int2', 'int4', 'int8', 'smallint', 'bigint', 'decimal', 'numeric', 'float', 'double', 'real', 'double precision', 'tinyint']);

/** A column value as a comparable JS value, whether it came from a raw row or from an entry. */
function norm(column: ColumnMetadata, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  const type = typeof column.type === 'string' ? column.type.toLowerCase() : (column.type as { name: string }).name.toLowerCase();
  if (column.isCreateDate || column.isUpdateDate || column.isDeleteDate || TIMES.has(type)) {
    if (value instanceof Date) return value.getTime();
    const text = String(value);
    return Date.parse(/^\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d(\.\d+)?)?$/.test(text) ? `${text.replace(' ', 'T')}Z` : text);
  }
  if (type === 'date') return value instanceof Date ? value.toISOString().slice(0, 10) : String(value).slice(0, 10);
  if (type === 'json' || type === 'jsonb' || type === 'simple-json') return typeof value === 'string' ? JSON.parse(value) : value;
  if (type === 'simple-array') return typeof value === 'string' ? (value === '' ? [] : value.split(',')) : value;
  if (type === 'boolean' || type === 'bool') return value === true || value === 1 || value === '1' || value === 't';
  if (NUMBERS.has(type)) return Number(value);
  return typeof value === 'object' ? value : String(value);
}

function imageMatches(metadata: EntityMetadata, image: unknown, raw: ObjectLiteral | undefined, what: string): void {
  if (!raw) {
    expect(image, `${what}: no row`).toBeNull();
    return;
  }
  expect(image, `${what}: an image`).toEqual(expect.any(Object));
  const columns = columnsOf(metadata);
  const values = image as ObjectLiteral;
  expect(Object.keys(values).sort(), `${what}: every column, nothing else`).toEqual(columns.map((c) => c.propertyPath).sort());
  for (const column of columns) {
    expect(norm(column, values[column.propertyPath]), `${what}: ${column.propertyPath}`).toEqual(norm(column, raw[column.databaseName]));
  }
}

function sameRow(metadata: EntityMetadata, a: ObjectLiteral | undefined, b: ObjectLiteral | undefined): boolean {
  if (!a || !b) return a === b;
  return columnsOf(metadata).every((c) => JSON.stringify(norm(c, a[c.databaseName])) === JSON.stringify(norm(c, b[c.databaseName])));
}

/** How many rows differ between two snapshots (created, deleted or changed). */
function changedRows(before: Snapshot, after: Snapshot): number {
  let changed = 0;
  for (const [path, table] of after) {
    const old = before.get(path)!;
    for (const id of new Set([...old.rows.keys(), ...table.rows.keys()])) if (!sameRow(table.metadata, old.rows.get(id), table.rows.get(id))) changed++;
  }
  return changed;
}

/** Each changed row has a chain of entries leading from its state before to its state after; nothing else has entries. */
function checkEntries(entries: AuditLog[], before: Snapshot, after: Snapshot, kinds: string[]): void {
  const byRow = new Map<string, AuditLog[]>();
  for (const entry of entries) {
    expect(entry.meta ?? {}, 'not marked partial').not.toHaveProperty('auditCapture');
    expect(entry.resourceId, `${entry.resource} ${entry.action} names its row`).not.toBeNull();
    const key = `${entry.resource}\u0000${entry.resourceId}`;
    byRow.set(key, [...(byRow.get(key) ?? []), entry]);
  }
  const expected = new Set<string>();
  for (const [path, table] of after) {
    const old = before.get(path)!;
    for (const id of new Set([...old.rows.keys(), ...table.rows.keys()])) {
      if (!sameRow(table.metadata, old.rows.get(id), table.rows.get(id))) expected.add(`${table.metadata.tableName}\u0000${id}`);
    }
  }
  const tables = new Map([...after.values()].map((t) => [t.metadata.tableName, t]));
  for (const key of new Set([...expected, ...byRow.keys()])) {
    const [resource, id] = key.split('\u0000') as [string, string];
    const list = byRow.get(key) ?? [];
    const table = tables.get(resource);
    expect(table, `entries for a table of the shape (${resource})`).toBeDefined();
    const was = before.get(table!.metadata.tablePath)!.rows.get(id);
    const is = table!.rows.get(id);
    expect(list.length, `entries for ${resource} ${id}`).toBeGreaterThan(0);
    imageMatches(table!.metadata, list[0]!.previousData, was, `${resource} ${id} before`);
    imageMatches(table!.metadata, list.at(-1)!.data, is, `${resource} ${id} after`);
    if (!was) expect(list[0]!.action).toBe('create');
    if (!is) expect(list.at(-1)!.action).toBe('delete');
    for (let i = 0; i + 1 < list.length; i++) expect(list[i + 1]!.previousData, `${resource} ${id}: entries chain`).toEqual(list[i]!.data);
    for (const entry of list) {
      if (entry.previousData && entry.data) expect(kinds, `${resource} ${id} action`).toContain(entry.action);
    }
  }
}
