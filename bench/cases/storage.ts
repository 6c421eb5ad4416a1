import 'reflect-metadata';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { chainedDatabase } from './chain.js';
import { scaled, type CaseResult } from '../stats.js';

/**
 * Bytes per entry on disk for N typical entries (chain.ts `chainedDatabase`: data and previousData of about
 * 150 bytes each, meta, author, IP, user agent): the whole file, and the entries' table and indexes alone.
 */
export async function storage(): Promise<CaseResult[]> {
  const n = scaled(1_000_000);
  const dir = mkdtempSync(join(tmpdir(), 'auditql-bench-storage-'));
  const file = join(dir, 'storage.sqlite');
  await chainedDatabase(file, n);
  const db = new Database(file);
  db.exec('VACUUM');
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  let table: number | null = null;
  let indexes: number | null = null;
  try {
    const rows = db.prepare(`SELECT name, SUM(pgsize) AS bytes FROM dbstat GROUP BY name`).all() as Array<{ name: string; bytes: number }>;
    table = rows.find((r) => r.name === 'audit_log')?.bytes ?? null;
    indexes = rows.filter((r) => r.name.startsWith('idx_audit_log') || r.name.startsWith('sqlite_autoindex_audit_log')).reduce((sum, r) => sum + r.bytes, 0);
  } catch {
    // SQLite without the dbstat table: the whole file only.
  }
  const payload = (db.prepare(`SELECT AVG(LENGTH(data) + LENGTH(previous_data) + LENGTH(meta)) AS b FROM audit_log`).get() as { b: number }).b;
  db.close();
  const size = statSync(file).size;
  rmSync(dir, { recursive: true, force: true });
  return [
    {
      case: `storage of ${n} typical entries (SQLite, uncompressed)`,
      metric: 'bytes/entry',
      value: Math.round(size / n),
      baseline: null,
      ratio: null,
      target: 'measured (no target: compression is not built)',
      met: null,
      detail: `file ${(size / 1e6).toFixed(0)} MB after VACUUM (page ${pageSize} B)${table !== null ? `; table ${Math.round(table / n)} B/entry, indexes ${Math.round((indexes ?? 0) / n)} B/entry` : ''}; JSON values ${Math.round(payload)} B/entry`,
    },
  ];
}
