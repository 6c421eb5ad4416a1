import 'reflect-metadata';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
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
  const started = process.hrtime.bigint();
  await chainedDatabase(file, n);
  const ingestMs = Number(process.hrtime.bigint() - started) / 1e6;
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
  const codec = compressionEstimate(db);
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
      target: 'measured; a codec only where it saves ≥ 2×',
      met: null,
      detail: `file ${(size / 1e6).toFixed(0)} MB after VACUUM (page ${pageSize} B)${table !== null ? `; table ${Math.round(table / n)} B/entry, indexes ${Math.round((indexes ?? 0) / n)} B/entry` : ''}; JSON values ${Math.round(payload)} B/entry`,
    },
    ...codec.map(({ threshold, saved, compressMs, values }) => {
      const ratio = size / Math.max(1, size - saved);
      const cost = compressMs / ingestMs;
      return {
        case: threshold === 0 ? 'compressing every JSON value (deflate, built in)' : `compressing JSON values over ${threshold} B (deflate, built in)`,
        metric: 'file size ÷ compressed size',
        value: Number(ratio.toFixed(3)),
        baseline: null,
        ratio: null,
        target: 'a codec is built only if ≥ 2× on disk at ≤ 10 % ingest cost',
        met: null,
        detail: `${ratio >= 2 && cost <= 0.1 ? 'WORTH BUILDING' : 'not worth building'}: ${values} values over ${threshold} B would save ${Math.round(saved / n)} B/entry of ${Math.round(size / n)}; compressing them costs ${((compressMs * 1000) / n).toFixed(2)} µs/entry, ${(cost * 100).toFixed(1)} % of the bulk load that wrote the file (${((ingestMs * 1000) / n).toFixed(1)} µs/entry, the cheapest ingest there is)`,
      };
    }),
  ];
}

/**
 * What compressing large JSON values would save: every data, previousData and meta value longer than the
 * threshold deflated on its own (as a transparent column codec would have to: a reader decompresses one
 * value), bytes saved against the file as it is, and the CPU time the compression takes.
 */
function compressionEstimate(db: Database.Database): Array<{ threshold: number; saved: number; compressMs: number; values: number }> {
  const rows = db.prepare(`SELECT data, previous_data, meta FROM audit_log`).raw();
  return [0, 128, 1024].map((threshold) => {
    let saved = 0;
    let values = 0;
    let compressNs = 0n;
    for (const row of rows.iterate() as Iterable<Array<string | null>>) {
      for (const value of row) {
        if (value === null || Buffer.byteLength(value) <= threshold) continue;
        const started = process.hrtime.bigint();
        const packed = deflateRawSync(value).length;
        compressNs += process.hrtime.bigint() - started;
        saved += Math.max(0, Buffer.byteLength(value) - packed);
        values++;
      }
    }
    return { threshold, saved, compressMs: Number(compressNs) / 1e6, values };
  });
}
