import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Column, DataSource, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { AuditLog, auditMigrations, AuditSubscriber } from '../../src/index.js';
import { disableChainForBenchmark } from '../../src/audit/chain/settings.js';
import { verifyDatabaseFile } from '../../src/cli/verify.js';
import { GENESIS_HASH } from '../../src/shared/chain/canonical.js';
import { linkEntries, type ChainHead, type UnlinkedEntry } from '../../src/shared/chain/link.js';
import { DEFAULT_PERSONAL_FIELDS, nameRuleMatcher } from '../../src/shared/chain/personal.js';
import { personalPathsColumn } from '../../src/shared/chain/rows.js';
import { median, range, scaled, type CaseResult } from '../stats.js';
import { interleaved, timed } from './rounds.js';

@Entity({ name: 'bench_item' })
class Item {
  @PrimaryGeneratedColumn({ type: 'integer' }) id!: number;
  @Column({ type: 'varchar' }) name!: string;
  @Column({ type: 'integer' }) quantity!: number;
  @Column({ type: 'simple-json', nullable: true }) attributes!: Record<string, unknown> | null;
}

async function open(file: string, chained: boolean, synchronous: string) {
  const ds = new DataSource({
    type: 'better-sqlite3',
    database: file,
    entities: [AuditLog, Item],
    migrations: auditMigrations,
    subscribers: [AuditSubscriber],
    prepareDatabase: (db: { pragma: (s: string) => unknown }) => {
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${synchronous}`);
    },
  });
  await ds.initialize();
  await ds.runMigrations();
  await ds.query('CREATE TABLE IF NOT EXISTS bench_item (id integer PRIMARY KEY AUTOINCREMENT, name varchar NOT NULL, quantity integer NOT NULL, attributes text)');
  if (!chained) {
    // What an audited write cost before the chain: no head, no hash, no unique (tenant, sequence) index.
    await ds.query('DROP TRIGGER "audit_log_chained"');
    await ds.query('DROP INDEX "idx_audit_log_tenant_sequence"');
    disableChainForBenchmark(ds);
  }
  return ds;
}

function timeSaves(ds: DataSource, n: number): Promise<{ wall: number; cpu: number }> {
  const repo = ds.getRepository(Item);
  return timed(async () => {
    for (let i = 0; i < n; i++) await repo.save(repo.create({ name: `item ${i}`, quantity: i, attributes: { color: 'red', size: i % 5, owner: { email: `o${i}@example.com` } } }));
  });
}

/**
 * Audited single-row save()s with the chain and without it (the same writer, chaining switched off), in
 * interleaved rounds whose order alternates (A B, B A, …), both warm.
 */
export async function chainWrites(): Promise<CaseResult[]> {
  const n = scaled(2000);
  const rounds = 7;
  const results: CaseResult[] = [];
  for (const synchronous of ['FULL', 'NORMAL']) {
    const dir = mkdtempSync(join(tmpdir(), 'auditql-bench-chain-'));
    const unchained = await open(join(dir, 'unchained.sqlite'), false, synchronous);
    const chained = await open(join(dir, 'chained.sqlite'), true, synchronous);
    await timeSaves(unchained, Math.min(200, n));
    await timeSaves(chained, Math.min(200, n));
    const ratios: number[] = [];
    const cpuRatios: number[] = [];
    const rates: number[] = [];
    const baseline: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const [a, b] = await interleaved(r, () => timeSaves(unchained, n), () => timeSaves(chained, n));
      baseline.push((n / a.wall) * 1000);
      rates.push((n / b.wall) * 1000);
      ratios.push(b.wall / a.wall);
      cpuRatios.push(b.cpu / a.cpu);
    }
    const entries = await chained.getRepository(AuditLog).count();
    await unchained.destroy();
    await chained.destroy();
    rmSync(dir, { recursive: true, force: true });
    const ratio = median(ratios);
    results.push({
      case: `chained audited writes (synchronous=${synchronous})`,
      metric: 'saves/s chained',
      value: Math.round(median(rates)),
      baseline: Math.round(median(baseline)),
      ratio,
      target: 'time ≤ 1.10× unchained',
      met: ratio <= 1.1,
      detail: `${n} saves × ${rounds} rounds, interleaved, order alternating; time ratio median ${ratio.toFixed(3)} (${range(ratios)}), CPU time ratio ${median(cpuRatios).toFixed(2)} (${range(cpuRatios)}); ${entries} chained entries`,
    });
  }
  return results;
}

/** N typical entries (payloads of a few hundred bytes, author, IP, user agent), chained, in a fresh file. */
export async function chainedDatabase(file: string, n: number): Promise<void> {
  const ds = new DataSource({ type: 'better-sqlite3', database: file, entities: [AuditLog], migrations: auditMigrations });
  await ds.initialize();
  await ds.runMigrations();
  await ds.destroy();
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  const insert = db.prepare(
    `INSERT INTO audit_log (tenant_id, resource, resource_id, action, author_id, author_name, author_type, data, previous_data, meta, ip, user_agent, transaction_id, created_at, sequence, hash, previous_hash, hash_version, salt, personal_paths)
     VALUES (@tenantId, @resource, @resourceId, @action, @authorId, @authorName, @authorType, @data, @previousData, @meta, @ip, @userAgent, @transactionId, @createdAt, @sequence, @hash, @previousHash, @hashVersion, @salt, @paths)`,
  );
  const personal = nameRuleMatcher(DEFAULT_PERSONAL_FIELDS);
  let head: ChainHead = { sequence: 0, hash: GENESIS_HASH };
  const batch = db.transaction((from: number, to: number) => {
    const entries: UnlinkedEntry[] = [];
    for (let i = from; i < to; i++) {
      const data = { id: String(i % 20_000), title: `Title ${i}`, status: ['draft', 'published', 'archived'][i % 3]!, price: (i % 1000) / 10, tags: ['a', 'b', 'c'].slice(0, i % 4), updatedBy: i % 1000 };
      entries.push({
        tenantId: 'default', createdAt: 1_763_800_000_000 + i, resource: `resource_${i % 50}`, resourceId: data.id, action: 'update',
        authorId: `user-${i % 1000}`, authorName: `User ${i % 1000}`, authorType: 'user', data, previousData: { ...data, title: `Title ${i - 1}` },
        meta: { requestId: `req-${i}` }, ip: `10.0.${i % 256}.1`, userAgent: 'Mozilla/5.0 (bench)', transactionId: `tx-${i}`, idempotencyKey: null, redactedChanges: null, recordedBy: null,
      });
    }
    const linked = linkEntries(new Map([['default', head]]), entries, personal);
    for (const row of linked.rows) insert.run({ ...row, redactedChanges: undefined, erasedDigests: undefined, personalPaths: undefined, paths: personalPathsColumn(row.personalPaths) });
    head = linked.heads.get('default')!;
  });
  for (let i = 0; i < n; i += 10_000) batch(i, Math.min(n, i + 10_000));
  db.prepare(`INSERT INTO audit_chain_head (tenant_id, sequence, hash) VALUES ('default', ?, ?)`).run(head.sequence, head.hash);
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
}

/**
 * `auditql verify`'s path over a file of N typical chained entries: read in batches, recompute every hash.
 * On one thread (`workers: 1`) and on one thread per core, in interleaved runs. Entries/s by wall time, and
 * by CPU time (all threads) for the one-thread run, which is what one core does when it is not shared.
 */
export async function chainVerify(): Promise<CaseResult[]> {
  const n = scaled(1_000_000);
  const dir = mkdtempSync(join(tmpdir(), 'auditql-bench-verify-'));
  const file = join(dir, 'chained.sqlite');
  await chainedDatabase(file, n);
  await verifyDatabaseFile(file, { workers: 1 }); // warm the page cache
  const verify = async (workers: number) => {
    const time = await timed(async () => {
      const [result] = await verifyDatabaseFile(file, { workers });
      if (!result?.valid || result.checked !== n) throw new Error(`verification failed: ${JSON.stringify(result)}`);
    });
    return { wall: (n / time.wall) * 1000, cpu: (n / time.cpu) * 1000 };
  };
  const threads = availableParallelism();
  const one: Array<{ wall: number; cpu: number }> = [];
  const many: Array<{ wall: number; cpu: number }> = [];
  for (let r = 0; r < 4; r++) {
    const [a, b] = await interleaved(r, () => verify(1), () => verify(threads));
    one.push(a);
    many.push(b);
  }
  rmSync(dir, { recursive: true, force: true });
  const rate = median(many.map((x) => x.wall));
  const single = median(one.map((x) => x.wall));
  return [
    {
      case: `chain verification (${n.toLocaleString('en')} entries)`,
      metric: `entries/s on ${threads} threads`,
      value: Math.round(rate),
      baseline: Math.round(single),
      ratio: rate / single,
      target: '≥ 200,000 entries/s',
      met: rate >= 200_000,
      detail:
        `4 interleaved runs each of auditql verify's path (SQLite read in batches of 500 + recompute), 4 personal digests per entry; ` +
        `${threads} threads ${range(many.map((x) => x.wall / 1000))}k/s; one thread (baseline) ${range(one.map((x) => x.wall / 1000))}k/s, ` +
        `${Math.round(median(one.map((x) => x.cpu)) / 1000)}k per CPU-second`,
    },
  ];
}
