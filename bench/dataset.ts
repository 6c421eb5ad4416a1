import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import { createSqliteDataSource, openDatabase } from '../src/db/data-source.js';
import { ROLLUP_UNITS } from '../src/db/activity-rollups.js';
import { migrations } from '../src/db/migrations/index.js';
import { scaled } from './stats.js';
import { GENESIS_HASH } from '../src/shared/chain/canonical.js';
import { entryHash, HASH_VERSION, type ChainRow } from '../src/shared/chain/canonical.js';
import type { ChainHead } from '../src/shared/chain/link.js';
import { DEFAULT_PERSONAL_FIELDS, findPersonalPaths, nameRuleMatcher, type FieldMatcher } from '../src/shared/chain/personal.js';
import { personalPathsColumn } from '../src/shared/chain/rows.js';

export const RESOURCES = Array.from({ length: 50 }, (_, i) => `resource_${String(i).padStart(2, '0')}`);
export const ACTIONS = ['create', 'update', 'delete', 'login', 'export'];
const AUTHORS = 1000;
const DAY = 86_400_000;
/** Rows per transaction while loading. */
const CHUNK = 50_000;

/** A deterministic PRNG, so every generated database is the same. */
function random(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/** The personal paths of every generated entry (author id and name, IP, user agent: the fixed ones; no personal JSON fields). */
const PERSONAL_PATHS = ['/authorId', '/authorName', '/ip', '/userAgent'];

/** Fails the build when the shortcut above drifts from the writer: same personal paths, JSON in canonical form. */
function checkChainRow(row: ChainRow, personal: FieldMatcher): void {
  const parse = (text: string | null) => (text === null ? null : JSON.parse(text));
  const paths = findPersonalPaths({ ...row, data: parse(row.data), previousData: parse(row.previousData), meta: parse(row.meta) }, personal);
  if (JSON.stringify(paths) !== JSON.stringify(row.personalPaths)) throw new Error(`generated entry has personal paths ${paths.join(', ')}`);
  if (entryHash(row, row.previousHash, true) !== row.hash) throw new Error('generated entry JSON is not in canonical form');
}

export interface BenchDatabase {
  file: string;
  rows: number;
  start: number;
  end: number;
}

/**
 * The benchmark database: `base` entries (1,000,000 unless a case asks for more), scaled by BENCH_SCALE, of
 * realistic shape — 50 resources, 1,000 authors, 90 days up to `end`, JSON payloads of a few hundred bytes,
 * chained (sequence, hash, previous hash) exactly as the writer chains them, so verification cases can use it.
 *
 * Built once and cached in bench/results/ (git-ignored), keyed by the row count and the schema version (the
 * newest migration): a schema change builds a new file. It is loaded the way a bulk import would be, not
 * through the API: the schema comes from the real migrations, then the indexes and triggers on audit_log are
 * dropped, the rows go in by plain INSERTs in large transactions with no journal, and the indexes, the
 * rollups (from one GROUP BY each), the search index (one bulk insert) and the triggers are made afterwards,
 * from the same SQL the migrations used. 10M entries take a few minutes on 2 cores.
 */
export async function benchDatabase(end: number, base = 1_000_000): Promise<BenchDatabase> {
  const rows = scaled(base);
  const dir = new URL('./results/', import.meta.url).pathname;
  mkdirSync(dir, { recursive: true });
  const schema = migrations.at(-1)!.name.replace(/\D/g, '');
  const file = `${dir}bench-${rows}-${schema}.sqlite`;
  const start = end - 90 * DAY;
  if (existsSync(file)) return { file, rows, start, end };
  const began = Date.now();
  const log = (what: string) => console.error(`  dataset ${rows.toLocaleString('en')}: ${what} (${((Date.now() - began) / 1000).toFixed(0)} s)`);
  const partial = `${file}.partial`;
  for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(partial + suffix, { force: true });
  const ds = await openDatabase(createSqliteDataSource({ database: partial, synchronous: 'NORMAL' }));
  await ds.destroy();
  const db = new Database(partial);
  db.pragma('journal_mode = DELETE');
  db.pragma('journal_mode = OFF');
  db.pragma('synchronous = OFF');
  db.pragma('cache_size = -2000000');
  db.pragma('temp_store = FILE');

  // Indexes and triggers are set aside while the table is filled, and made again from their own SQL after.
  const derived = db
    .prepare(`SELECT "type", "name", "sql" FROM "sqlite_master" WHERE "tbl_name" = 'audit_log' AND "type" IN ('index', 'trigger') AND "sql" IS NOT NULL`)
    .all() as Array<{ type: 'index' | 'trigger'; name: string; sql: string }>;
  for (const d of derived) db.exec(`DROP ${d.type.toUpperCase()} "${d.name}"`);

  const insert = db.prepare(
    `INSERT INTO audit_log (tenant_id, resource, resource_id, action, name, author_id, author_name, author_type, data, previous_data, meta, ip, user_agent, transaction_id, created_at, sequence, hash, previous_hash, hash_version, salt, personal_paths)
     VALUES ('default', ?, ?, ?, ?, ?, ?, 'user', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const next = random(42);
  const step = (end - start) / rows;
  const personal = nameRuleMatcher(DEFAULT_PERSONAL_FIELDS);
  // Entries are chained as the writer chains them (sequence, salt, personal digests, hash over the facts),
  // but without the writer's generic steps, which cost ~100 µs an entry (10M: half an hour): every entry here
  // has the same shape, so its personal paths are the same, and its JSON is written with keys already in
  // canonical order. Every 10,000th entry is checked against the writer's own functions.
  let head: ChainHead = { sequence: 0, hash: GENESIS_HASH };
  const batch = db.transaction((from: number, to: number) => {
    const salts = randomBytes(16 * (to - from)).toString('hex');
    for (let i = from; i < to; i++) {
      const author = Math.floor(next() * AUTHORS);
      const resource = RESOURCES[Math.floor(next() * next() * RESOURCES.length)]!; // some resources are much busier
      const recordId = String(Math.floor(next() * 20_000));
      const action = ACTIONS[Math.floor(next() * ACTIONS.length)]!;
      // Keys in JCS order (id, price, status, tags, title, updatedBy).
      const fields = (title: string) => ({ id: recordId, price: (i % 1000) / 10, status: ['draft', 'published', 'archived'][i % 3]!, tags: ['a', 'b', 'c'].slice(0, i % 4), title, updatedBy: author });
      const row: ChainRow = {
        tenantId: 'default', createdAt: Math.floor(start + i * step), resource, resourceId: recordId, action,
        authorId: `user-${author}`, authorName: `User ${author}`, authorType: 'user',
        data: JSON.stringify(fields(`Title ${i}`)), previousData: JSON.stringify(fields(`Title ${i - 1}`)), meta: `{"requestId":"req-${i}"}`,
        ip: `10.0.${author % 256}.${i % 256}`, userAgent: 'Mozilla/5.0 (bench)', transactionId: `tx-${i}`, idempotencyKey: null, redactedChanges: null, recordedBy: null,
        sequence: head.sequence + 1, previousHash: head.hash, hashVersion: HASH_VERSION, salt: salts.slice((i - from) * 32, (i - from + 1) * 32),
        personalPaths: PERSONAL_PATHS, erasedDigests: null, hash: '',
      };
      row.hash = entryHash(row, head.hash);
      if (i % 10_000 === 0) checkChainRow(row, personal);
      head = { sequence: row.sequence, hash: row.hash };
      insert.run(resource, recordId, action, i % 7 === 0 ? `Change ${i}` : null, row.authorId, row.authorName, row.data, row.previousData, row.meta, row.ip, row.userAgent,
        row.transactionId, row.createdAt, row.sequence, row.hash, row.previousHash, row.hashVersion, row.salt, personalPathsColumn(row.personalPaths));
    }
  });
  for (let i = 0; i < rows; i += CHUNK) {
    batch(i, Math.min(rows, i + CHUNK));
    if ((i / CHUNK) % 20 === 19) log(`${(i + CHUNK).toLocaleString('en')} rows`);
  }
  db.prepare(`INSERT INTO audit_chain_head (tenant_id, sequence, hash) VALUES ('default', ?, ?)`).run(head.sequence, head.hash);
  log('rows loaded');

  for (const d of derived) if (d.type === 'index') db.exec(d.sql);
  log('indexes made');
  db.exec(`DELETE FROM "audit_activity_daily"`);
  db.exec(`INSERT INTO "audit_activity_daily" SELECT "tenant_id", "created_at" - "created_at" % 86400000, "action", "resource", COUNT(*) FROM "audit_log" GROUP BY 1, 2, 3, 4`);
  db.exec(`DELETE FROM "audit_activity_by"`);
  for (const [column, unit] of Object.entries(ROLLUP_UNITS.audit_activity_by)) {
    db.exec(`INSERT INTO "audit_activity_by" SELECT "tenant_id", "created_at" - "created_at" % ${unit}, '${column}', "${column}", COUNT(*) FROM "audit_log" GROUP BY 1, 2, 4`);
  }
  db.exec(`DELETE FROM "audit_activity_daily_by"`);
  for (const column of ['action', 'resource']) {
    db.exec(`INSERT INTO "audit_activity_daily_by" SELECT "tenant_id", "day", '${column}', "${column}", SUM("entries") FROM "audit_activity_daily" GROUP BY "tenant_id", "day", "${column}"`);
  }
  log('rollups made');
  const searchable = db.prepare(`SELECT COUNT(*) AS n FROM "sqlite_master" WHERE "name" = 'audit_log_search'`).get() as { n: number };
  if (searchable.n === 1) {
    db.exec(`INSERT INTO "audit_log_search" ("rowid", "name", "resource", "resource_id", "action", "author_name") SELECT "id", "name", "resource", "resource_id", "action", "author_name" FROM "audit_log" ORDER BY "id"`);
    db.exec(`UPDATE "audit_log_search_state" SET "indexed_through" = (SELECT MAX("id") FROM "audit_log")`);
    db.exec(`INSERT INTO "audit_log_search" ("audit_log_search") VALUES ('optimize')`);
    log('search index made');
  }
  for (const d of derived) if (d.type === 'trigger') db.exec(d.sql);
  db.pragma('analysis_limit = 1000');
  db.exec('ANALYZE');
  db.pragma('journal_mode = WAL');
  db.close();
  renameSync(partial, file);
  log('done');
  return { file, rows, start, end };
}
