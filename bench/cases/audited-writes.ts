import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Column, DataSource, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { AuditLog, auditMigrations, AuditSubscriber } from '../../src/index.js';
import { interleave, scaled, type CaseResult } from '../stats.js';

@Entity({ name: 'bench_item' })
class Item {
  @PrimaryGeneratedColumn({ type: 'integer' }) id!: number;
  @Column({ type: 'varchar' }) name!: string;
  @Column({ type: 'integer' }) quantity!: number;
  @Column({ type: 'simple-json', nullable: true }) attributes!: Record<string, unknown> | null;
}

async function open(file: string, audited: boolean, synchronous: string) {
  const ds = new DataSource({
    type: 'better-sqlite3',
    database: file,
    entities: [AuditLog, Item],
    migrations: auditMigrations,
    subscribers: audited ? [AuditSubscriber] : [],
    prepareDatabase: (db: { pragma: (s: string) => unknown }) => {
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${synchronous}`);
    },
  });
  await ds.initialize();
  await ds.runMigrations();
  await ds.query('CREATE TABLE IF NOT EXISTS bench_item (id integer PRIMARY KEY AUTOINCREMENT, name varchar NOT NULL, quantity integer NOT NULL, attributes text)');
  return ds;
}

async function timeSaves(ds: DataSource, n: number): Promise<number> {
  const repo = ds.getRepository(Item);
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await repo.save(repo.create({ name: `item ${i}`, quantity: i, attributes: { color: 'red', size: i % 5 } }));
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/** N single-row save()s, each its own transaction, with and without the capture subscriber, alternating. */
export async function auditedWrites(): Promise<CaseResult[]> {
  const n = scaled(2000);
  const rounds = 5;
  const results: CaseResult[] = [];
  for (const synchronous of ['FULL', 'NORMAL']) {
    const dir = mkdtempSync(join(tmpdir(), 'auditql-bench-'));
    const plain = await open(join(dir, 'plain.sqlite'), false, synchronous);
    const audited = await open(join(dir, 'audited.sqlite'), true, synchronous);
    const measured = await interleave({ ours: () => timeSaves(audited, n), baseline: () => timeSaves(plain, n), rounds });
    const entries = await audited.getRepository(AuditLog).count();
    await plain.destroy();
    await audited.destroy();
    rmSync(dir, { recursive: true, force: true });
    const ratio = measured.median.ratio;
    results.push({
      case: `audited writes (synchronous=${synchronous})`,
      metric: 'saves/s audited',
      value: Math.round((n / measured.median.ours) * 1000),
      baseline: Math.round((n / measured.median.baseline) * 1000),
      ratio,
      spread: measured.spread,
      target: 'time ≤ 1.3× unaudited',
      met: ratio <= 1.3,
      detail: `${n} saves × ${rounds} rounds each, interleaved after a warm-up round; ratio of times; ${entries} entries written`,
    });
  }
  return results;
}
