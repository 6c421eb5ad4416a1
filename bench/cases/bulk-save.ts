import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Column, DataSource, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { AuditLog, auditMigrations, AuditSubscriber } from '../../src/index.js';
import { interleave, median, range, scaled, type CaseResult } from '../stats.js';

@Entity({ name: 'bench_bulk_item' })
class BulkItem {
  @PrimaryGeneratedColumn({ type: 'integer' }) id!: number;
  @Column({ type: 'varchar' }) name!: string;
  @Column({ type: 'integer' }) quantity!: number;
  @Column({ type: 'simple-json', nullable: true }) attributes!: Record<string, unknown> | null;
}

async function open(file: string, audited: boolean) {
  const ds = new DataSource({
    type: 'better-sqlite3',
    database: file,
    entities: [AuditLog, BulkItem],
    migrations: auditMigrations,
    subscribers: audited ? [AuditSubscriber] : [],
    prepareDatabase: (db: { pragma: (s: string) => unknown }) => {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
    },
  });
  await ds.initialize();
  await ds.runMigrations();
  await ds.query('CREATE TABLE IF NOT EXISTS bench_bulk_item (id integer PRIMARY KEY AUTOINCREMENT, name varchar NOT NULL, quantity integer NOT NULL, attributes text)');
  return ds;
}

/**
 * One `repo.save(array)` of `n` new entities: one transaction, as an import or a sync job writes. Returns
 * wall time and this process's CPU time (less disturbed by neighbours on a shared machine), in ms.
 */
async function timeBulkSave(ds: DataSource, n: number): Promise<{ wall: number; cpu: number }> {
  const repo = ds.getRepository(BulkItem);
  const items = Array.from({ length: n }, (_, i) => repo.create({ name: `item ${i}`, quantity: i, attributes: { color: 'red', size: i % 5 } }));
  const start = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  await repo.save(items);
  const used = process.cpuUsage(cpu);
  return { wall: Number(process.hrtime.bigint() - start) / 1e6, cpu: (used.user + used.system) / 1000 };
}

/** `repo.save(arrayOf10000)` with and without the capture subscriber, alternating, both warm. */
export async function bulkSave(): Promise<CaseResult[]> {
  const n = scaled(10_000);
  const rounds = 7;
  const dir = mkdtempSync(join(tmpdir(), 'auditql-bench-bulk-'));
  const plain = await open(join(dir, 'plain.sqlite'), false);
  const audited = await open(join(dir, 'audited.sqlite'), true);
  const cpu = { ours: [] as number[], baseline: [] as number[] };
  const side = (ds: DataSource, into: number[]) => async () => {
    const { wall, cpu } = await timeBulkSave(ds, n);
    into.push(cpu);
    return wall;
  };
  const measured = await interleave({ ours: side(audited, cpu.ours), baseline: side(plain, cpu.baseline), rounds });
  // Without the warm-up round, paired as the rounds ran.
  const cpuRatios = cpu.ours.slice(1).map((c, i) => c / cpu.baseline[i + 1]!);
  const entries = await audited.getRepository(AuditLog).count();
  await plain.destroy();
  await audited.destroy();
  rmSync(dir, { recursive: true, force: true });
  const ratio = measured.median.ratio;
  return [
    {
      case: 'bulk save (synchronous=NORMAL)',
      metric: `ms per save() of ${n} audited`,
      value: Math.round(measured.median.ours),
      baseline: Math.round(measured.median.baseline),
      ratio,
      spread: measured.spread,
      target: 'time ≤ 1.5× unaudited',
      met: ratio <= 1.5,
      detail: `save() of ${n} new entities × ${rounds} rounds each, interleaved after a warm-up round; CPU time ratio ${median(cpuRatios).toFixed(2)} (${range(cpuRatios)}); ${entries} entries written`,
    },
  ];
}
