import 'reflect-metadata';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Column, DataSource, DeleteDateColumn, Entity, MoreThan, PrimaryGeneratedColumn } from 'typeorm';
import { AuditSubscriber } from '../../../src/audit/capture.subscriber.js';
import { AuditPublishSubscriber, registerPublisher } from '../../../src/audit/publish.subscriber.js';
import { withAuditContext } from '../../../src/audit/context.js';
import { AuditLog } from '../../../src/db/entities/audit-log.entity.js';
import { migrations } from '../../../src/db/migrations/index.js';
import { createAuditPubSub } from '../../../src/pubsub.js';

@Entity({ name: 'product' })
class Product {
  @PrimaryGeneratedColumn({ type: 'integer' }) id!: number;
  @Column({ type: 'varchar', unique: true }) sku!: string;
  @Column({ type: 'varchar' }) name!: string;
  @Column({ type: 'integer', default: 0 }) stock!: number;
  @Column({ type: 'varchar', nullable: true }) apiKey!: string | null;
  @DeleteDateColumn({ type: 'datetime', nullable: true }) deletedAt!: Date | null;
}

let ds: DataSource;
let mark = 0;
const pubsub = createAuditPubSub();

beforeAll(async () => {
  ds = new DataSource({
    type: 'sqlite',
    database: ':memory:',
    entities: [AuditLog, Product],
    migrations,
    subscribers: [AuditSubscriber, AuditPublishSubscriber],
  });
  await ds.initialize();
  await ds.runMigrations();
  await ds.query(`CREATE TABLE product (id integer PRIMARY KEY AUTOINCREMENT, sku varchar NOT NULL UNIQUE, name varchar NOT NULL, stock integer NOT NULL DEFAULT 0, apiKey varchar, deletedAt datetime)`);
  registerPublisher(ds, pubsub);
});
afterAll(() => ds.destroy());
beforeEach(async () => {
  mark = (await ds.getRepository(AuditLog).maximum('id')) ?? 0;
});
const entries = () => ds.getRepository(AuditLog).find({ where: { id: MoreThan(mark) }, order: { id: 'ASC' } });

describe(`TypeORM ${(await import('typeorm/package.json', { with: { type: 'json' } })).default.version} with sqlite3`, () => {
  it('records save(), update() by criteria, delete() by criteria, soft delete and restore, and upsert', async () => {
    const repo = ds.getRepository(Product);
    const product = await withAuditContext({ author: { id: 'u1', name: 'Ann' } }, () => repo.save(repo.create({ sku: 'a', name: 'A', apiKey: 'k-secret' })));
    product.name = 'A2';
    await repo.save(product);
    await repo.update({ sku: 'a' }, { stock: 4 });
    await repo.softDelete({ id: product.id });
    await repo.restore({ id: product.id });
    await repo.upsert({ sku: 'a', name: 'A3' }, ['sku']);
    const inserted = await repo.insert({ sku: 'b', name: 'B' });
    const b = String(inserted.identifiers[0]!.id);
    await ds.createQueryBuilder().delete().from(Product).where('sku = :sku', { sku: 'b' }).execute();
    const list = await entries();
    expect(list.map((e) => [e.action, e.resourceId])).toEqual([
      ['create', String(product.id)],
      ['update', String(product.id)],
      ['update', String(product.id)],
      ['softDelete', String(product.id)],
      ['restore', String(product.id)],
      ['update', String(product.id)],
      ['create', b],
      ['delete', b],
    ]);
    expect(list[0]).toMatchObject({ authorId: 'u1', data: { sku: 'a', apiKey: '[REDACTED]' } });
    expect(list[2]).toMatchObject({ previousData: { stock: 0 }, data: { stock: 4 } });
    expect(list[5]).toMatchObject({ previousData: { name: 'A2' }, data: { name: 'A3' } });
    expect(JSON.stringify(list)).not.toContain('k-secret');
  });

  it('writes nothing and publishes nothing for a transaction that rolls back; publishes after commit', async () => {
    const feed = pubsub.subscribe({ limit: 100 });
    await expect(
      ds.transaction(async (manager) => {
        await manager.save(Product, { sku: 'tx', name: 'T' });
        throw new Error('rollback');
      }),
    ).rejects.toThrow('rollback');
    expect(await entries()).toHaveLength(0);
    await ds.transaction((manager) => manager.save(Product, { sku: 'tx2', name: 'T2' }));
    const next = await feed.next();
    expect(next.value).toMatchObject({ resource: 'product', action: 'create', data: { sku: 'tx2' } });
    await feed.return();
  });
});
