import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
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
import { interleave, median, range, scaled, type CaseResult } from '../stats.js';

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

async function timeSaves(ds: DataSource, n: number): Promise<number> {
  const repo = ds.getRepository(Item);
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await repo.save(repo.create({ name: `item ${i}`, quantity: i, attributes: { color: 'red', size: i % 5, owner: { email: `o${i}@example.com` } } }));
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/** Audited single-row save()s with the chain and without it (the same writer, chaining switched off), alternating. */
export async function chainWrites(): Promise<CaseResult[]> {
  const n = scaled(2000);
  const rounds = 5;
  const results: CaseResult[] = [];
  for (const synchronous of ['FULL', 'NORMAL']) {
    const dir = mkdtempSync(join(tmpdir(), 'auditql-bench-chain-'));
    const unchained = await open(join(dir, 'unchained.sqlite'), false, synchronous);
    const chained = await open(join(dir, 'chained.sqlite'), true, synchronous);
    const measured = await interleave({ ours: () => timeSaves(chained, n), baseline: () => timeSaves(unchained, n), rounds });
    const entries = await chained.getRepository(AuditLog).count();
    await unchained.destroy();
    await chained.destroy();
    rmSync(dir, { recursive: true, force: true });
    const ratio = measured.median.ratio;
    results.push({
      case: `chained audited writes (synchronous=${synchronous})`,
      metric: 'saves/s chained',
      value: Math.round((n / measured.median.ours) * 1000),
      baseline: Math.round((n / measured.median.baseline) * 1000),
      ratio,
      spread: measured.spread,
      target: 'time ≤ 1.10× unchained',
      met: ratio <= 1.1,
      detail: `${n} saves × ${rounds} rounds each, interleaved after a warm-up round; ratio of times; ${entries} chained entries`,
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

/** `auditql verify`'s path over a file of N typical chained entries: read in batches, recompute every hash. */
export async function chainVerify(): Promise<CaseResult[]> {
  const n = scaled(1_000_000);
  const dir = mkdtempSync(join(tmpdir(), 'auditql-bench-verify-'));
  const file = join(dir, 'chained.sqlite');
  await chainedDatabase(file, n);
  await verifyDatabaseFile(file); // warm the page cache
  const rates: number[] = [];
  for (let r = 0; r < 3; r++) {
    const start = process.hrtime.bigint();
    const [result] = await verifyDatabaseFile(file);
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (!result?.valid || result.checked !== n) throw new Error(`verification failed: ${JSON.stringify(result)}`);
    rates.push((n / ms) * 1000);
  }
  rmSync(dir, { recursive: true, force: true });
  const rate = median(rates);
  return [
    {
      case: `chain verification (${n.toLocaleString('en')} entries)`,
      metric: 'entries/s',
      value: Math.round(rate),
      baseline: null,
      ratio: null,
      target: '≥ 200,000 entries/s',
      met: rate >= 200_000,
      detail: `3 runs of auditql verify's path (SQLite read in batches of 5,000 + recompute); ${range(rates.map((x) => x / 1000))}k/s; 3 personal digests per entry`,
    },
  ];
}
