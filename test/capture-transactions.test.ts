import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Column, DataSource, Entity, PrimaryGeneratedColumn, type EntityManager, type QueryRunner } from 'typeorm';
import { AuditLog, auditMigrations, AuditPublishSubscriber, AuditSubscriber, createAuditServer, createAuditSubscriber, writeAuditEntries } from '../src/index.js';
import { hasTransactionState } from '../src/audit/transaction-state.js';

@Entity({ name: 'gadget' })
class Gadget {
  @PrimaryGeneratedColumn({ type: 'integer' }) id!: number;
  @Column({ type: 'varchar', length: 64 }) name!: string;
}

const dirs: string[] = [];
const open: DataSource[] = [];
afterEach(async () => {
  for (const ds of open.splice(0)) if (ds.isInitialized) await ds.destroy();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function dataSource(subscribers: Array<new () => object>): Promise<DataSource> {
  const dir = mkdtempSync(join(tmpdir(), 'auditql-tx-'));
  dirs.push(dir);
  const ds = new DataSource({ type: 'better-sqlite3', database: join(dir, 'app.sqlite'), entities: [AuditLog, Gadget], migrations: auditMigrations, subscribers });
  await ds.initialize();
  open.push(ds);
  await ds.runMigrations();
  await ds.query('CREATE TABLE gadget (id integer PRIMARY KEY AUTOINCREMENT, name varchar(64) NOT NULL)');
  return ds;
}

/** Runs `work` in a transaction and returns the query runner it used (SQLite: the one shared runner). */
async function inTransaction(ds: DataSource, work: (manager: EntityManager) => Promise<unknown>): Promise<QueryRunner> {
  let runner: QueryRunner | undefined;
  await ds.transaction(async (manager) => {
    runner = manager.queryRunner!;
    await work(manager);
    expect(hasTransactionState(runner), 'state exists while the transaction is open').toBe(true);
  });
  return runner!;
}

const paths: Array<[string, () => Promise<DataSource>]> = [
  ['AuditSubscriber alone on the app DataSource', () => dataSource([AuditSubscriber])],
  ['createAuditSubscriber(options)', () => dataSource([createAuditSubscriber({ ignore: ['nothing'] })])],
  [
    'createAuditServer on a DataSource with AuditSubscriber',
    async () => {
      const ds = await dataSource([AuditSubscriber]);
      createAuditServer({ dataSource: ds, logging: false });
      return ds;
    },
  ],
  ['AuditSubscriber and AuditPublishSubscriber together', () => dataSource([AuditSubscriber, AuditPublishSubscriber])],
];

describe.each(paths)('per-transaction state: %s', (_name, make) => {
  it('gives separate saves separate transaction ids, and one id to the entries of one transaction', async () => {
    const ds = await make();
    const repo = ds.getRepository(Gadget);
    for (const name of ['a', 'b', 'c']) await repo.save({ name });
    await ds.transaction(async (manager) => {
      await manager.save(Gadget, { name: 'd' });
      await manager.update(Gadget, { name: 'a' }, { name: 'a2' });
      await manager.delete(Gadget, { name: 'b' });
    });
    const entries = await ds.getRepository(AuditLog).find({ order: { id: 'ASC' } });
    expect(entries.map((e) => e.action)).toEqual(['create', 'create', 'create', 'create', 'update', 'delete']);
    const ids = entries.map((e) => e.transactionId);
    expect(new Set(ids.slice(0, 3)).size).toBe(3);
    expect(new Set(ids.slice(3)).size).toBe(1);
    expect(ids.slice(0, 3)).not.toContain(ids[3]);
  });

  it('releases the state of a transaction when it commits and when it rolls back', async () => {
    const ds = await make();
    const committed = await inTransaction(ds, (manager) => manager.save(Gadget, { name: 'kept' }));
    expect(hasTransactionState(committed)).toBe(false);

    let rolledBack: QueryRunner | undefined;
    await expect(
      ds.transaction(async (manager) => {
        rolledBack = manager.queryRunner!;
        await manager.save(Gadget, { name: 'lost' });
        expect(hasTransactionState(rolledBack)).toBe(true);
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    expect(hasTransactionState(rolledBack!)).toBe(false);

    // A savepoint that rolls back inside a transaction that commits.
    const outer = await inTransaction(ds, async (manager) => {
      await manager.save(Gadget, { name: 'outer' });
      await expect(
        manager.transaction(async (inner) => {
          await inner.save(Gadget, { name: 'inner' });
          throw new Error('inner fails');
        }),
      ).rejects.toThrow('inner fails');
    });
    expect(hasTransactionState(outer)).toBe(false);
    const names = (await ds.getRepository(AuditLog).find({ order: { id: 'ASC' } })).map((e) => (e.data as { name: string }).name);
    expect(names).toEqual(['kept', 'outer']);
  });

  it('does not grow with writes: after many transactions no state is left on the runner', async () => {
    const ds = await make();
    const repo = ds.getRepository(Gadget);
    for (let i = 0; i < 50; i++) await repo.save({ name: `g${i}` });
    await ds.createQueryBuilder().update(Gadget).set({ name: 'all' }).where('id > :min', { min: 0 }).execute();
    const runner = ds.createQueryRunner(); // SQLite: the same runner every transaction used
    expect(hasTransactionState(runner)).toBe(false);
    expect(new Set((await ds.getRepository(AuditLog).find()).map((e) => e.transactionId)).size).toBe(51);
  });
});

describe('per-transaction state without any auditql subscriber', () => {
  it('is released after entries written by the app itself commit or roll back', async () => {
    const ds = await dataSource([]);
    const runner = await inTransaction(ds, (manager) => writeAuditEntries(manager, [{ resource: 'app', action: 'one' }]));
    expect(hasTransactionState(runner)).toBe(false);
    await expect(
      ds.transaction(async (manager) => {
        await writeAuditEntries(manager, [{ resource: 'app', action: 'two' }]);
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    expect(hasTransactionState(runner)).toBe(false);
    await inTransaction(ds, (manager) => writeAuditEntries(manager, [{ resource: 'app', action: 'three' }]));
    const entries = await ds.getRepository(AuditLog).find({ order: { id: 'ASC' } });
    expect(entries.map((e) => e.action)).toEqual(['one', 'three']);
    expect(entries[0]!.transactionId).not.toBe(entries[1]!.transactionId);
  });
});
