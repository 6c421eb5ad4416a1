import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Column, DataSource, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { AuditLog, auditMigrations, AuditSubscriber } from '../src/index.js';

@Entity({ name: 'stock_item' })
class StockItem {
  @PrimaryGeneratedColumn({ type: 'integer' }) id!: number;
  @Column({ type: 'varchar' }) name!: string;
  @Column({ type: 'integer' }) quantity!: number;
}

const N = 1_200;

/**
 * A bulk `save()` is captured in batches: one multi-row INSERT of entries per batch of 500 rows, and for an
 * update one read of the before-images per batch, never one statement per row. Counted on the connection
 * itself (better-sqlite3's `verbose`), which sees the writer's statements as well as TypeORM's.
 */
describe('a bulk save of 1,200 entities', () => {
  const dir = mkdtempSync(join(tmpdir(), 'auditql-batching-'));
  const executed: string[] = [];
  let ds: DataSource;
  beforeAll(async () => {
    ds = new DataSource({
      type: 'better-sqlite3',
      database: join(dir, 'app.sqlite'),
      entities: [AuditLog, StockItem],
      migrations: auditMigrations,
      subscribers: [AuditSubscriber],
      verbose: (sql: unknown) => executed.push(String(sql)),
    });
    await ds.initialize();
    await ds.runMigrations();
    await ds.query('CREATE TABLE "stock_item" ("id" INTEGER PRIMARY KEY AUTOINCREMENT, "name" varchar NOT NULL, "quantity" integer NOT NULL)');
  });
  afterAll(async () => {
    await ds?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  const entryInserts = () => executed.filter((sql) => /^\s*INSERT INTO "audit_log"/i.test(sql));
  const itemReads = () => executed.filter((sql) => /^\s*SELECT/i.test(sql) && /"stock_item"/.test(sql));

  it('writes its entries with one INSERT per batch of 500', async () => {
    const repo = ds.getRepository(StockItem);
    executed.length = 0;
    await repo.save(Array.from({ length: N }, (_, i) => repo.create({ name: `item ${i}`, quantity: i })));
    expect(await ds.getRepository(AuditLog).countBy({ resource: 'stock_item', action: 'create' })).toBe(N);
    expect(entryInserts().length).toBeGreaterThanOrEqual(1);
    expect(entryInserts().length).toBeLessThanOrEqual(Math.ceil(N / 500));
  });

  it('reads the before-images of an update in batches too, and writes their entries the same way', async () => {
    const repo = ds.getRepository(StockItem);
    const items = await repo.find();
    for (const item of items) item.quantity += 1;
    executed.length = 0;
    await repo.save(items);
    expect(await ds.getRepository(AuditLog).countBy({ resource: 'stock_item', action: 'update' })).toBe(N);
    expect(entryInserts().length).toBeGreaterThanOrEqual(1);
    expect(entryInserts().length).toBeLessThanOrEqual(Math.ceil(N / 500));
    // TypeORM itself reads the rows it saves (in its own batches); ours add at most one read per batch.
    expect(itemReads().length).toBeLessThan(N / 50);
  });
});
