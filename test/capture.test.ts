import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MoreThan, type DataSource } from 'typeorm';
import { startShop } from '../examples/shop/app.js';
import { Customer, Order, OrderLine, Product } from '../examples/shop/entities/index.js';
import { AuditLog, diff, REDACTED, withAuditContext } from '../src/index.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dir = mkdtempSync(join(tmpdir(), 'auditql-capture-'));
let shop: Awaited<ReturnType<typeof startShop>>;
let ds: DataSource;
let mark = 0;

beforeAll(async () => {
  shop = await startShop({ database: join(dir, 'shop.sqlite'), port: 0 });
  ds = shop.dataSource;
});
afterAll(async () => {
  await shop.stop();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  mark = (await ds.getRepository(AuditLog).maximum('id')) ?? 0;
});

/** The entries written since the test began, oldest first. */
const entries = () => ds.getRepository(AuditLog).find({ where: { id: MoreThan(mark) }, order: { id: 'ASC' } });
const ann = { author: { id: 'u1', name: 'Ann', type: 'user' }, ip: '10.0.0.1', userAgent: 'test', meta: { requestId: 'r1' } };

async function newProduct(sku: string, price = '10.00', stock = 5) {
  const result = await ds.getRepository(Product).insert({ sku, name: sku, price, stock, supplierCost: '4.00' });
  return result.identifiers[0]!.id as number;
}

describe('capture through every TypeORM write path', () => {
  it('save() of a new entity records create, attributed to the surrounding context', async () => {
    const customer = await withAuditContext(ann, () => ds.getRepository(Customer).save(ds.getRepository(Customer).create({ email: 'a@x.io', name: 'A', password: 's3cret-1' })));
    const [entry, ...rest] = await entries();
    expect(rest).toHaveLength(0);
    expect(entry).toMatchObject({ resource: 'customer', resourceId: String(customer.id), action: 'create', authorId: 'u1', authorName: 'Ann', ip: '10.0.0.1', userAgent: 'test', meta: { requestId: 'r1' } });
    expect(entry!.previousData).toBeNull();
    expect(entry!.data).toMatchObject({ id: customer.id, email: 'a@x.io', name: 'A', password: REDACTED });
    expect(entry!.data).not.toHaveProperty('updatedAt'); // ignored field
  });

  it('save() of a change records update with before and after; a save that changes nothing records nothing', async () => {
    const repo = ds.getRepository(Customer);
    const customer = await repo.save(repo.create({ email: 'b@x.io', name: 'B', password: 'pw-b' }));
    mark = (await ds.getRepository(AuditLog).maximum('id'))!;
    customer.name = 'Bea';
    await repo.save(customer);
    await repo.save(customer); // no change (updatedAt is ignored)
    const list = await entries();
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ action: 'update', resourceId: String(customer.id), previousData: { name: 'B' }, data: { name: 'Bea' } });
    expect(diff(list[0]!.previousData, list[0]!.data, list[0]!.redactedChanges ?? [])).toEqual([{ field: 'name', kind: 'CHANGED', from: 'B', to: 'Bea' }]);
  });

  it('a changed secret shows as changed with both sides masked, and its value is stored nowhere', async () => {
    const repo = ds.getRepository(Customer);
    const customer = await repo.save(repo.create({ email: 'c@x.io', name: 'C', password: 'first-Secret-9' }));
    mark = (await ds.getRepository(AuditLog).maximum('id'))!;
    customer.password = 'second-Secret-9';
    await repo.save(customer);
    const [entry] = await entries();
    expect(entry!.data).toMatchObject({ password: REDACTED });
    expect(entry!.previousData).toMatchObject({ password: REDACTED });
    expect(diff(entry!.previousData, entry!.data, entry!.redactedChanges ?? [])).toEqual([{ field: 'password', kind: 'CHANGED', from: REDACTED, to: REDACTED }]);
    const rows = await ds.query('SELECT * FROM audit_log');
    expect(JSON.stringify(rows)).not.toMatch(/Secret-9/);
    await ds.query('PRAGMA wal_checkpoint(TRUNCATE)');
    expect(readFileSync(join(dir, 'shop.sqlite')).includes('first-Secret-9')).toBe(false);
  });

  it('insert() records create with the stored state, defaults included', async () => {
    const result = await ds.getRepository(Product).insert({ sku: 'ins-1', name: 'Inserted', price: '3.50' });
    const [entry] = await entries();
    expect(entry).toMatchObject({ resource: 'product', action: 'create', resourceId: String(result.identifiers[0]!.id) });
    expect(entry!.data).toMatchObject({ sku: 'ins-1', price: '3.50', stock: 0, supplierCost: REDACTED, deletedAt: null });
  });

  it('query-builder insert of several rows records one create each', async () => {
    await ds.createQueryBuilder().insert().into(Product).values([{ sku: 'qb-1', name: 'one', price: '1.00' }, { sku: 'qb-2', name: 'two', price: '2.00' }]).execute();
    const list = await entries();
    expect(list.map((e) => [e.action, (e.data as { sku: string }).sku])).toEqual([['create', 'qb-1'], ['create', 'qb-2']]);
  });

  it('update() by criteria records one full update per affected row', async () => {
    const a = await newProduct('crit-a', '10.00');
    const b = await newProduct('crit-b', '20.00');
    await newProduct('crit-c', '99.00');
    mark = (await ds.getRepository(AuditLog).maximum('id'))!;
    await withAuditContext(ann, () => ds.getRepository(Product).update({ name: 'crit-a' }, { name: 'renamed' }));
    await ds.getRepository(Product).createQueryBuilder().update().set({ stock: () => 'stock + 10' }).where('id IN (:...ids)', { ids: [a, b] }).execute();
    const list = await entries();
    expect(list.map((e) => [e.action, e.resourceId])).toEqual([['update', String(a)], ['update', String(a)], ['update', String(b)]]);
    expect(list[0]).toMatchObject({ authorId: 'u1', previousData: { name: 'crit-a', price: '10.00' }, data: { name: 'renamed', price: '10.00' } });
    expect(list[1]).toMatchObject({ previousData: { stock: 5 }, data: { stock: 15 } });
    expect(list[2]).toMatchObject({ previousData: { stock: 5 }, data: { stock: 15 } });
    // One statement, one transaction: the two rows of the query-builder update share a transaction id.
    expect(list[1]!.transactionId).toBe(list[2]!.transactionId);
    expect(list[0]!.transactionId).not.toBe(list[1]!.transactionId);
  });

  it('pairs before and after images row by row in a bulk query-builder insert and update', async () => {
    const rows = Array.from({ length: 300 }, (_, i) => ({ sku: `bulk-${i}`, name: `bulk ${i}`, price: '1.00', stock: i }));
    await ds.createQueryBuilder().insert().into(Product).values(rows).execute();
    await ds.createQueryBuilder().update(Product).set({ stock: () => 'stock + 1000' }).where('sku LIKE :p', { p: 'bulk-%' }).execute();
    const list = await entries();
    const creates = list.filter((e) => e.action === 'create');
    const updates = list.filter((e) => e.action === 'update');
    expect(creates).toHaveLength(300);
    expect(updates).toHaveLength(300);
    for (const entry of creates) expect((entry.data as { stock: number; sku: string }).sku).toBe(`bulk-${(entry.data as { stock: number }).stock}`);
    for (const entry of updates) {
      const before = entry.previousData as { stock: number; id: number };
      const after = entry.data as { stock: number; id: number };
      expect(after.id).toBe(before.id);
      expect(after.stock).toBe(before.stock + 1000);
      expect(entry.resourceId).toBe(String(before.id));
    }
  });

  it('an update by criteria that changes nothing, or matches nothing, records nothing', async () => {
    await newProduct('same', '7.00');
    mark = (await ds.getRepository(AuditLog).maximum('id'))!;
    await ds.getRepository(Product).update({ sku: 'same' }, { price: '7.00' });
    await ds.getRepository(Product).update({ sku: 'no-such-sku' }, { price: '1.00' });
    expect(await entries()).toHaveLength(0);
  });

  it('delete() by criteria and query-builder delete record one delete per row with its last state', async () => {
    const a = await newProduct('del-a');
    const b = await newProduct('del-b');
    mark = (await ds.getRepository(AuditLog).maximum('id'))!;
    await ds.getRepository(Product).delete({ id: a });
    await ds.createQueryBuilder().delete().from(Product).where('sku = :sku', { sku: 'del-b' }).execute();
    const list = await entries();
    expect(list.map((e) => [e.action, e.resourceId, (e.previousData as { sku: string }).sku, e.data])).toEqual([
      ['delete', String(a), 'del-a', null],
      ['delete', String(b), 'del-b', null],
    ]);
  });

  it('remove() records delete', async () => {
    const repo = ds.getRepository(Customer);
    const customer = await repo.save(repo.create({ email: 'rm@x.io', name: 'Rm', password: 'x' }));
    const id = customer.id;
    mark = (await ds.getRepository(AuditLog).maximum('id'))!;
    await repo.remove(customer);
    const [entry] = await entries();
    expect(entry).toMatchObject({ action: 'delete', resourceId: String(id), previousData: { email: 'rm@x.io' }, data: null });
  });

  it('softRemove()/recover() and softDelete()/restore() record softDelete and restore', async () => {
    const id = await newProduct('soft');
    const repo = ds.getRepository(Product);
    mark = (await ds.getRepository(AuditLog).maximum('id'))!;
    const product = await repo.findOneByOrFail({ id });
    await repo.softRemove(product);
    await repo.recover(product);
    await repo.softDelete({ id });
    await repo.restore({ id });
    const list = await entries();
    expect(list.map((e) => e.action)).toEqual(['softDelete', 'restore', 'softDelete', 'restore']);
    for (const entry of list) expect(entry.resourceId).toBe(String(id));
    expect((list[0]!.previousData as { deletedAt: unknown }).deletedAt).toBeNull();
    expect((list[0]!.data as { deletedAt: string }).deletedAt).toEqual(expect.any(String));
    expect((list[3]!.data as { deletedAt: unknown }).deletedAt).toBeNull();
  });

  it('upsert() records create for a new row and update for an existing one', async () => {
    const repo = ds.getRepository(Product);
    await repo.upsert({ sku: 'ups', name: 'first', price: '1.00' }, ['sku']);
    await repo.upsert({ sku: 'ups', name: 'second', price: '1.00' }, ['sku']);
    const list = await entries();
    expect(list.map((e) => e.action)).toEqual(['create', 'update']);
    expect(list[1]).toMatchObject({ previousData: { name: 'first' }, data: { name: 'second' } });
    expect(list[0]!.resourceId).toBe(list[1]!.resourceId);
  });

  it('records a composite primary key as sorted-key JSON', async () => {
    const customer = await ds.getRepository(Customer).save({ email: 'ck@x.io', name: 'Ck', password: 'x' });
    const productId = await newProduct('ck');
    const order = await ds.getRepository(Order).save({ customerId: customer.id, total: '10.00', lines: [{ productId, quantity: 1, unitPrice: '10.00' } as OrderLine] });
    const line = (await entries()).find((e) => e.resource === 'order_line');
    expect(line!.resourceId).toBe(JSON.stringify({ orderId: order.id, productId }));
  });
});

describe('atomic with the change', () => {
  it('writes every entry of a transaction with one transaction id, and none when it rolls back half-way', async () => {
    const customer = await ds.getRepository(Customer).save({ email: 'tx@x.io', name: 'Tx', password: 'x' });
    const productId = await newProduct('tx-prod', '5.00', 3);
    mark = (await ds.getRepository(AuditLog).maximum('id'))!;
    await expect(
      ds.transaction(async (manager) => {
        await manager.decrement(Product, { id: productId }, 'stock', 1);
        await manager.save(Order, { customerId: customer.id, total: '5.00' });
        await manager.transaction(async (inner) => {
          await inner.update(Customer, { id: customer.id }, { name: 'Changed inside' });
        });
        throw new Error('payment declined');
      }),
    ).rejects.toThrow('payment declined');
    expect(await entries()).toHaveLength(0);
    expect((await ds.getRepository(Product).findOneByOrFail({ id: productId })).stock).toBe(3);

    await ds.transaction(async (manager) => {
      await manager.decrement(Product, { id: productId }, 'stock', 1);
      await manager.save(Order, { customerId: customer.id, total: '5.00' });
    });
    const list = await entries();
    expect(list.map((e) => `${e.resource}:${e.action}`)).toEqual(['product:update', 'order:create']);
    expect(new Set(list.map((e) => e.transactionId)).size).toBe(1);
  });

  it('keeps the entries of an inner transaction that rolled back out, and those of the outer one in', async () => {
    const productId = await newProduct('savepoint', '5.00', 3);
    mark = (await ds.getRepository(AuditLog).maximum('id'))!;
    await ds.transaction(async (manager) => {
      await manager.update(Product, { id: productId }, { name: 'outer' });
      await expect(
        manager.transaction(async (inner) => {
          await inner.update(Product, { id: productId }, { name: 'inner' });
          throw new Error('inner fails');
        }),
      ).rejects.toThrow('inner fails');
    });
    const list = await entries();
    expect(list.map((e) => (e.data as { name: string }).name)).toEqual(['outer']);
  });
});
