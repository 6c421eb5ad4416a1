import 'reflect-metadata';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyDatabaseFile } from '../src/cli/verify.js';
import { chainRanges, verifyInParallel } from '../src/db/chain-workers.js';
import { sqliteDataSourceOptions } from '../src/db/data-source.js';
import { entryHash, GENESIS_HASH } from '../src/shared/chain/canonical.js';
import { CHAIN_COLUMNS, chainRowFromDb, type RawChainRow } from '../src/shared/chain/rows.js';
import { seedBulk } from './helpers/seed.js';

const dir = mkdtempSync(join(tmpdir(), 'auditql-parallel-'));
const pristine = join(dir, 'pristine.sqlite');
const N = 30_000;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeAll(async () => {
  const ds = new DataSource(sqliteDataSourceOptions({ database: pristine }));
  await ds.initialize();
  await ds.runMigrations();
  await ds.destroy();
  seedBulk(pristine, N, (i) => ({ author_name: `Author ${i % 7}` }));
}, 120_000);

function tampered(name: string, tamper: (db: Database.Database) => void): string {
  const file = join(dir, `${name}.sqlite`);
  copyFileSync(pristine, file);
  const db = new Database(file);
  for (const { name: trigger } of db.prepare(`SELECT name FROM sqlite_master WHERE type = 'trigger'`).all() as Array<{ name: string }>) db.exec(`DROP TRIGGER "${trigger}"`);
  tamper(db);
  db.close();
  return file;
}

const head = (file: string) => {
  const db = new Database(file, { readonly: true });
  try {
    const row = db.prepare(`SELECT sequence, hash FROM audit_chain_head WHERE tenant_id = 'default'`).get() as { sequence: number; hash: string };
    return { sequence: Number(row.sequence), hash: row.hash };
  } finally {
    db.close();
  }
};

/** Ranges of 7,000, then smaller ones: boundaries at 7,001, 14,001, 21,001, 23,251, … */
const inParallel = (file: string) => verifyInParallel({ file, tenant: 'default', anchor: { sequence: 0, hash: GENESIS_HASH }, head: head(file), checkpoints: [], workers: 2, rangeSize: 7000 });

describe('verification on worker threads', () => {
  it('cuts the chain into consecutive ranges that get smaller towards the end, so the threads finish together', () => {
    expect(chainRanges(1, 30_000, 2, 7000).map((r) => r.from)).toEqual([1, 7001, 14_001, 21_001, 23_251, 25_251, 27_251, 29_251]);
    for (const [first, last, workers, size] of [[1, 1_000_000, 2, 50_000], [501, 77_777, 3, 10_000], [1, 1, 4, 50_000], [1, 20_000, 8, 50_000]] as const) {
      const ranges = chainRanges(first, last, workers, size);
      expect(ranges[0]!.from).toBe(first);
      expect(ranges.at(-1)!.to).toBe(last);
      ranges.forEach((range, i) => {
        expect(range.to).toBeGreaterThanOrEqual(range.from);
        expect(range.to - range.from + 1).toBeLessThanOrEqual(size);
        if (i > 0) expect(range.from).toBe(ranges[i - 1]!.to + 1);
      });
      // Never longer than the one before; the last one short, so no thread waits long for another.
      const lengths = ranges.map((r) => r.to - r.from + 1);
      lengths.forEach((length, i) => i > 0 && expect(length).toBeLessThanOrEqual(lengths[i - 1]!));
      expect(lengths.at(-1)).toBeLessThanOrEqual(2000);
    }
    expect(chainRanges(10, 9, 2, 5)).toEqual([]);
  });

  it('finds an intact chain valid, with the same answer as one thread', async () => {
    const parallel = await inParallel(pristine);
    const [sequential] = await verifyDatabaseFile(pristine, { workers: 1 });
    expect(parallel).toMatchObject({ valid: true, checked: N, headSequence: N });
    expect({ tenant: 'default', ...parallel, anchorSigned: null }).toEqual(sequential);
    const [threaded] = await verifyDatabaseFile(pristine, { workers: 2 });
    expect(threaded).toEqual(sequential);
  }, 120_000);

  it('reports an edited entry inside a range exactly as the sequential run does', async () => {
    const file = tampered('edited', (db) => db.prepare(`UPDATE audit_log SET action = 'forged' WHERE sequence = 15000`).run());
    expect(await inParallel(file)).toBeNull();
    const [sequential] = await verifyDatabaseFile(file, { workers: 1 });
    expect(sequential).toMatchObject({ valid: false, reason: 'HASH_MISMATCH', firstInvalidSequence: 15000, checked: 15000 });
    expect(await verifyDatabaseFile(file, { workers: 2 })).toEqual([sequential]);
  }, 120_000);

  it('catches a chain rewritten from the first entry of a range, which only the link between ranges shows', async () => {
    const file = tampered('relinked', (db) => {
      // Entry 14,001 names another previous hash and every later hash is recomputed from it: each range
      // is consistent in itself, only 14,001's link to 14,000 is broken.
      const rows = db.prepare(`SELECT "id", ${CHAIN_COLUMNS} FROM audit_log WHERE tenant_id = 'default' AND sequence > 14000 ORDER BY sequence`).all() as Array<RawChainRow & { id: number }>;
      let previous = 'f'.repeat(64);
      const update = db.prepare('UPDATE audit_log SET previous_hash = ?, hash = ? WHERE id = ?');
      for (const raw of rows) {
        const hash = entryHash(chainRowFromDb(raw), previous);
        update.run(previous, hash, raw.id);
        previous = hash;
      }
      db.prepare(`UPDATE audit_chain_head SET hash = ? WHERE tenant_id = 'default'`).run(previous);
    });
    expect(await inParallel(file)).toBeNull();
    const [threaded] = await verifyDatabaseFile(file, { workers: 2 });
    expect(threaded).toMatchObject({ valid: false, reason: 'PREVIOUS_HASH_MISMATCH', firstInvalidSequence: 14001 });
  }, 120_000);

  it('reports an entry appended past the recorded head', async () => {
    const file = tampered('appended', (db) => {
      const raw = db.prepare(`SELECT * FROM audit_log WHERE sequence = ?`).get(N) as Record<string, unknown>;
      delete raw.id;
      raw.sequence = N + 1;
      db.prepare(`INSERT INTO audit_log (${Object.keys(raw).map((k) => `"${k}"`).join(', ')}) VALUES (${Object.keys(raw).map(() => '?').join(', ')})`).run(...Object.values(raw));
    });
    const [threaded] = await verifyDatabaseFile(file, { workers: 2 });
    expect(threaded).toMatchObject({ valid: false, reason: 'HEAD_MISMATCH', firstInvalidSequence: N + 1 });
  }, 120_000);
});

describe("the server's verifyAuditChain on a SQLite file", () => {
  it('recomputes a long chain on threads and still names the first failure', async () => {
    const { verifyTenantChain } = await import('../src/services/chain.js');
    const { generateKeyPairSync } = await import('node:crypto');
    const key = { publicKey: generateKeyPairSync('ed25519').publicKey };
    const file = tampered('served', () => undefined);
    const statements: string[] = [];
    const ds = new DataSource({ ...sqliteDataSourceOptions({ database: file }), logging: true, logger: { logQuery: (sql: string) => void statements.push(sql), logQueryError: () => undefined, logQuerySlow: () => undefined, logSchemaBuild: () => undefined, logMigration: () => undefined, log: () => undefined } });
    await ds.initialize();
    try {
      expect(await verifyTenantChain(ds, key, 'default')).toMatchObject({ valid: true, checked: N, headSequence: N, anchorSequence: 0 });
      // A long range too, and none of its batches read on this thread's connection (only its two ends).
      const batches = () => statements.filter((sql) => sql.includes('ORDER BY "sequence", "id" LIMIT')).length;
      const before = batches();
      expect(await verifyTenantChain(ds, key, 'default', { fromSequence: 2, toSequence: N - 1 })).toMatchObject({ valid: true, checked: N - 2, headSequence: N - 1, anchorSequence: 0 });
      expect(batches()).toBe(before);
      await ds.query(`DROP TRIGGER IF EXISTS "audit_log_chained"`);
      await ds.query(`UPDATE audit_log SET resource = 'forged' WHERE sequence = 22222`);
      expect(await verifyTenantChain(ds, key, 'default')).toMatchObject({ valid: false, reason: 'HASH_MISMATCH', firstInvalidSequence: 22222, checked: 22222 });
      expect(await verifyTenantChain(ds, key, 'default', { fromSequence: 2, toSequence: N - 1 })).toMatchObject({ valid: false, reason: 'HASH_MISMATCH', firstInvalidSequence: 22222, checked: 22221 });
    } finally {
      await ds.destroy();
    }
  }, 120_000);
});
