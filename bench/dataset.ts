import 'reflect-metadata';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import { createSqliteDataSource, openDatabase } from '../src/db/data-source.js';
import { scaled } from './stats.js';

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
  const file = `${dir}bench-${rows}.sqlite`;
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
    `INSERT INTO audit_log (tenant_id, resource, resource_id, action, name, author_id, author_name, author_type, data, previous_data, meta, ip, user_agent, transaction_id, created_at)
     VALUES ('default', ?, ?, ?, ?, ?, ?, 'user', ?, ?, ?, ?, 'Mozilla/5.0 (bench)', ?, ?)`,
  );
  const next = random(42);
  const step = (end - start) / rows;
  const batch = db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const author = Math.floor(next() * AUTHORS);
      const resource = RESOURCES[Math.floor(next() * next() * RESOURCES.length)]!; // some resources are much busier
      const recordId = String(Math.floor(next() * 20_000));
      const data = { id: recordId, title: `Title ${i}`, status: ['draft', 'published', 'archived'][i % 3], price: (i % 1000) / 10, tags: ['a', 'b', 'c'].slice(0, i % 4), updatedBy: author };
      insert.run(
        resource, recordId, ACTIONS[Math.floor(next() * ACTIONS.length)], i % 7 === 0 ? `Change ${i}` : null,
        `user-${author}`, `User ${author}`, JSON.stringify(data), JSON.stringify({ ...data, title: `Title ${i - 1}` }),
        JSON.stringify({ requestId: `req-${i}` }), `10.0.${author % 256}.${i % 256}`, `tx-${i}`, Math.floor(start + i * step),
      );
    }
  });
  for (let i = 0; i < rows; i += 10_000) batch(i, Math.min(rows, i + 10_000));
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.exec('ANALYZE');
  db.close();
  renameSync(partial, file);
  return { file, rows, start, end };
}
