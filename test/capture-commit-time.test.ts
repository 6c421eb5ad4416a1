import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Column, DataSource, Entity, EventSubscriber, PrimaryGeneratedColumn, type DataSourceOptions, type EntitySubscriberInterface, type InsertEvent } from 'typeorm';
import { AuditLog, auditMigrations, createAuditSubscriber, withAuditContext } from '../src/index.js';
import { createMariaDatabase, createPostgresDatabase, MARIADB, servicesAvailable } from './helpers/services.js';

/**
 * Entries are written at the commit of the transaction that made the change, not as each change is seen:
 * the tenant's place in the chain is then held only for the moment of the commit, so the app's own locks and
 * its other connections never wait on auditing, and a change rolled back never leaves an entry.
 */
@Entity({ name: 'purchase' })
class Purchase {
  @PrimaryGeneratedColumn({ type: 'integer' }) id!: number;
  @Column({ type: 'varchar', length: 50 }) item!: string;
}

@Entity({ name: 'stock' })
class Stock {
  @PrimaryGeneratedColumn({ type: 'integer' }) id!: number;
  @Column({ type: 'integer' }) qty!: number;
}

@Entity({ name: 'invoice' })
class Invoice {
  @PrimaryGeneratedColumn({ type: 'integer' }) id!: number;
  @Column({ type: 'integer' }) amount!: number;
}

/** An app's own rule, failing after the write: TypeORM rolls the change back without waiting for auditql's hooks. */
@EventSubscriber()
class InvoiceRules implements EntitySubscriberInterface<Invoice> {
  listenTo() {
    return Invoice;
  }
  async afterInsert(event: InsertEvent<Invoice>) {
    if (event.entity.amount < 0) throw new Error('negative amount');
  }
}

const remote = await servicesAvailable('test/capture-commit-time.test.ts (PostgreSQL and MariaDB)', 'postgres', 'mariadb');
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function open(kind: 'sqlite' | 'postgres' | 'mariadb', entities: Array<new () => object>, subscribers: Array<new () => object> = []): Promise<DataSource> {
  let options: DataSourceOptions;
  if (kind === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'auditql-commit-time-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    options = { type: 'better-sqlite3', database: join(dir, 'app.sqlite') };
  } else if (kind === 'postgres') {
    const database = await createPostgresDatabase();
    cleanups.push(() => database.drop());
    options = { type: 'postgres', url: database.url };
  } else {
    const database = await createMariaDatabase();
    cleanups.push(() => database.drop());
    options = { type: 'mysql', host: MARIADB.host, port: MARIADB.port, username: MARIADB.user, database: database.name };
  }
  const ds = new DataSource({ ...options, entities: [...entities, AuditLog], migrations: auditMigrations, subscribers: [createAuditSubscriber(), ...subscribers] } as DataSourceOptions);
  await ds.initialize();
  cleanups.push(async () => void (ds.isInitialized && (await ds.destroy())));
  await ds.runMigrations();
  await ds.synchronize();
  return ds;
}

const entries = (ds: DataSource) => ds.getRepository(AuditLog).find({ order: { id: 'ASC' } });

/** A promise and the function that settles it: the test waits on the moment it names, not on time. */
function signal() {
  let fire!: () => void;
  const fired = new Promise<void>((resolve) => (fire = resolve));
  return { fire, fired };
}

describe.skipIf(!remote).each(['postgres', 'mariadb'] as const)('on %s', (kind) => {
  it('a transaction that also writes through another connection of the DataSource completes', async () => {
    const ds = await open(kind, [Purchase, Stock]);
    await ds.transaction(async (manager) => {
      await manager.save(Purchase, { item: 'book' });
      // A service that saves through the DataSource rather than the transaction's manager: its own
      // connection, its own transaction, committed first. It used to wait for the tenant's chain, held by
      // the outer transaction until its commit, which waited for it: for ever on PostgreSQL.
      await ds.getRepository(Stock).save({ qty: 1 });
    });
    expect((await entries(ds)).map((e) => `${e.action} ${e.resource}`)).toEqual(['create stock', 'create purchase']);
  });

  it('writes a transaction\'s entries tenant by tenant, each tenant\'s in the order seen, so that tenant locks are always taken in one order', async () => {
    const ds = await open(kind, [Purchase, Stock]);
    // More than one write's worth (500) for each tenant, zeta's first: written in several batches.
    await ds.transaction(async (manager) => {
      await withAuditContext({ tenantId: 'zeta' }, () => manager.save(Purchase, Array.from({ length: 600 }, (_, i) => ({ item: `z${i}` }))));
      await withAuditContext({ tenantId: 'alpha' }, () => manager.save(Purchase, Array.from({ length: 600 }, (_, i) => ({ item: `a${i}` }))));
    });
    const written = await entries(ds);
    expect(written.map((e) => e.tenantId).indexOf('zeta')).toBe(600);
    for (const [tenant, prefix] of [['alpha', 'a'], ['zeta', 'z']] as const) {
      const mine = written.filter((e) => e.tenantId === tenant);
      expect(mine.map((e) => (e.data as { item: string }).item)).toEqual(Array.from({ length: 600 }, (_, i) => `${prefix}${i}`));
      expect(mine.map((e) => Number(e.sequence))).toEqual(Array.from({ length: 600 }, (_, i) => i + 1));
    }
  });

  it('two transactions of one tenant meeting on a row lock of the app wait for each other, as without auditing (no deadlock)', async () => {
    const ds = await open(kind, [Purchase, Stock]);
    await ds.getRepository(Stock).save({ qty: 100 });
    const aSaved = signal();
    const bDecremented = signal();
    const a = ds.transaction(async (manager) => {
      await manager.save(Purchase, { item: 'book' });
      aSaved.fire();
      await bDecremented.fired;
      // Waits for B's lock on the stock row, which B holds until its commit.
      await manager.decrement(Stock, { id: 1 }, 'qty', 1);
    });
    const b = (async () => {
      await aSaved.fired;
      await ds.transaction(async (manager) => {
        await manager.decrement(Stock, { id: 1 }, 'qty', 1);
        bDecremented.fire();
      });
    })();
    await Promise.all([a, b]);
    expect((await ds.getRepository(Stock).findOneByOrFail({ id: 1 })).qty).toBe(98);
    expect((await entries(ds)).filter((e) => e.resource === 'stock' && e.action === 'update')).toHaveLength(2);
  });
});

describe.each(['sqlite', ...(remote ? (['postgres', 'mariadb'] as const) : [])] as const)('a change rolled back because an app hook failed, on %s', (kind) => {
  it('leaves no entry, and none slips into the next transaction', async () => {
    const ds = await open(kind, [Invoice], [InvoiceRules]);
    await expect(ds.getRepository(Invoice).save({ amount: -5 })).rejects.toThrow('negative amount');
    await ds.transaction(async (manager) => {
      await manager.save(Invoice, { amount: 7 });
    });
    const written = await entries(ds);
    expect(written.map((e) => `${e.action} ${JSON.stringify(e.data)}`)).toEqual([`create ${JSON.stringify({ amount: 7, id: (await ds.getRepository(Invoice).findOneByOrFail({ amount: 7 })).id })}`]);
  });

  it('inside a savepoint that rolls back, leaves no entry in the enclosing transaction', async () => {
    const ds = await open(kind, [Invoice], [InvoiceRules]);
    await ds.transaction(async (manager) => {
      await manager.save(Invoice, { amount: 3 });
      await expect(manager.transaction((inner) => inner.save(Invoice, { amount: -3 }))).rejects.toThrow('negative amount');
    });
    expect((await entries(ds)).map((e) => (e.data as { amount: number }).amount)).toEqual([3]);
    expect(await ds.getRepository(Invoice).count()).toBe(1);
  });
});
