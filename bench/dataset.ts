import 'reflect-metadata';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import { createSqliteDataSource, openDatabase } from '../src/db/data-source.js';
import { scaled } from './stats.js';
import { GENESIS_HASH } from '../src/shared/chain/canonical.js';
import { linkEntries, type ChainHead, type UnlinkedEntry } from '../src/shared/chain/link.js';
import { DEFAULT_PERSONAL_FIELDS, nameRuleMatcher } from '../src/shared/chain/personal.js';
import { personalPathsColumn } from '../src/shared/chain/rows.js';

export const RESOURCES = Array.from({ length: 50 }, (_, i) => `resource_${String(i).padStart(2, '0')}`);
export const ACTIONS = ['create', 'update', 'delete', 'login', 'export'];
const AUTHORS = 1000;
const DAY = 86_400_000;

/** A deterministic PRNG, so every generated database is the same. */
function random(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/**
 * The benchmark database: N entries (1,000,000 by default, scaled by BENCH_SCALE) of realistic shape —
 * 50 resources, 1,000 authors, 90 days up to `end`, JSON payloads of a few hundred bytes — created once
 * through the real migrations and cached next to the results.
 */
export async function benchDatabase(end: number): Promise<{ file: string; rows: number; start: number; end: number }> {
  const rows = scaled(1_000_000);
  const dir = new URL('./results/', import.meta.url).pathname;
  mkdirSync(dir, { recursive: true });
  // v2: entries carry their place in the chain.
  const file = `${dir}bench-v2-${rows}.sqlite`;
  const start = end - 90 * DAY;
  if (existsSync(file)) return { file, rows, start, end };
  const partial = `${file}.partial`;
  rmSync(partial, { force: true });
  const ds = await openDatabase(createSqliteDataSource({ database: partial, synchronous: 'NORMAL' }));
  await ds.destroy();
  const db = new Database(partial);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  const insert = db.prepare(
    `INSERT INTO audit_log (tenant_id, resource, resource_id, action, name, author_id, author_name, author_type, data, previous_data, meta, ip, user_agent, transaction_id, created_at, sequence, hash, previous_hash, hash_version, salt, personal_paths)
     VALUES ('default', ?, ?, ?, ?, ?, ?, 'user', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const next = random(42);
  const step = (end - start) / rows;
  const personal = nameRuleMatcher(DEFAULT_PERSONAL_FIELDS);
  // Entries are chained as the writer chains them (the database refuses entries without a place in the chain).
  let head: ChainHead = { sequence: 0, hash: GENESIS_HASH };
  const batch = db.transaction((from: number, to: number) => {
    const names: Array<string | null> = [];
    const entries: UnlinkedEntry[] = [];
    for (let i = from; i < to; i++) {
      const author = Math.floor(next() * AUTHORS);
      const resource = RESOURCES[Math.floor(next() * next() * RESOURCES.length)]!; // some resources are much busier
      const recordId = String(Math.floor(next() * 20_000));
      const data = { id: recordId, title: `Title ${i}`, status: ['draft', 'published', 'archived'][i % 3]!, price: (i % 1000) / 10, tags: ['a', 'b', 'c'].slice(0, i % 4), updatedBy: author };
      names.push(i % 7 === 0 ? `Change ${i}` : null);
      entries.push({
        tenantId: 'default', createdAt: Math.floor(start + i * step), resource, resourceId: recordId, action: ACTIONS[Math.floor(next() * ACTIONS.length)]!,
        authorId: `user-${author}`, authorName: `User ${author}`, authorType: 'user', data, previousData: { ...data, title: `Title ${i - 1}` },
        meta: { requestId: `req-${i}` }, ip: `10.0.${author % 256}.${i % 256}`, userAgent: 'Mozilla/5.0 (bench)', transactionId: `tx-${i}`,
        idempotencyKey: null, redactedChanges: null, recordedBy: null,
      });
    }
    const linked = linkEntries(new Map([['default', head]]), entries, personal);
    linked.rows.forEach((r, k) =>
      insert.run(r.resource, r.resourceId, r.action, names[k], r.authorId, r.authorName, r.data, r.previousData, r.meta, r.ip, r.userAgent, r.transactionId, r.createdAt,
        r.sequence, r.hash, r.previousHash, r.hashVersion, r.salt, personalPathsColumn(r.personalPaths)),
    );
    head = linked.heads.get('default')!;
  });
  for (let i = 0; i < rows; i += 10_000) batch(i, Math.min(rows, i + 10_000));
  db.prepare(`INSERT INTO audit_chain_head (tenant_id, sequence, hash) VALUES ('default', ?, ?)`).run(head.sequence, head.hash);
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.exec('ANALYZE');
  db.close();
  renameSync(partial, file);
  return { file, rows, start, end };
}
