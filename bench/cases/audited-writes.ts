import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Column, DataSource, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { AuditLog, auditMigrations, AuditSubscriber } from '../../src/index.js';
import { median, range, scaled, type CaseResult } from '../stats.js';
import { interleaved, timed } from './rounds.js';

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

function timeSaves(ds: DataSource, n: number): Promise<{ wall: number; cpu: number }> {
  const repo = ds.getRepository(Item);
  return timed(async () => {
    for (let i = 0; i < n; i++) await repo.save(repo.create({ name: `item ${i}`, quantity: i, attributes: { color: 'red', size: i % 5 } }));
  });
}

/**
 * N single-row save()s, each its own transaction, with and without the capture subscriber (the audited side
 * chained and hashed, as the product writes), in interleaved rounds whose order alternates, both warm.
 */
export async function auditedWrites(): Promise<CaseResult[]> {
  const n = scaled(2000);
  const rounds = 7;
  const results: CaseResult[] = [];
  for (const synchronous of ['FULL', 'NORMAL']) {
    const dir = mkdtempSync(join(tmpdir(), 'auditql-bench-'));
    const plain = await open(join(dir, 'plain.sqlite'), false, synchronous);
    const audited = await open(join(dir, 'audited.sqlite'), true, synchronous);
    await timeSaves(plain, Math.min(200, n)); // warm-up
    await timeSaves(audited, Math.min(200, n));
    const ratios: number[] = [];
    const cpuRatios: number[] = [];
    const plainRates: number[] = [];
    const auditedRates: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const [a, b] = await interleaved(r, () => timeSaves(plain, n), () => timeSaves(audited, n));
      plainRates.push((n / a.wall) * 1000);
      auditedRates.push((n / b.wall) * 1000);
      ratios.push(b.wall / a.wall);
      cpuRatios.push(b.cpu / a.cpu);
    }
    const entries = await audited.getRepository(AuditLog).count();
    await plain.destroy();
    await audited.destroy();
    rmSync(dir, { recursive: true, force: true });
    const ratio = median(ratios);
    results.push({
      case: `audited writes (synchronous=${synchronous})`,
      metric: 'saves/s audited',
      value: Math.round(median(auditedRates)),
      baseline: Math.round(median(plainRates)),
      ratio,
      target: 'time ≤ 1.3× unaudited',
      met: ratio <= 1.3,
      detail: `${n} saves × ${rounds} rounds, interleaved, order alternating; time ratio median ${ratio.toFixed(2)} (${range(ratios)}), CPU time ratio ${median(cpuRatios).toFixed(2)} (${range(cpuRatios)}); ${entries} entries written`,
    });
  }
  return results;
}
