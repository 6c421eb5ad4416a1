import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSqliteDataSource, openDatabase } from '../../src/db/data-source.js';
import { detectSearchIndex, indexPendingEntries } from '../../src/db/search-index.js';
import { createStore, type AuditStore } from '../../src/db/store.js';
import { eraseActor } from '../../src/services/erasure.js';
import { benchDatabase } from '../dataset.js';
import { median, type CaseResult } from '../stats.js';

const ROUNDS = 3;

/**
 * `eraseActor` for one author (≈ 1 in 1,000 entries) on a copy of the benchmark database with its search
 * index built: the whole erasure and its longest transaction (how long other writes wait at most), the
 * batches and the steps that merge the search index's segments included. Each round erases another author
 * on the same copy.
 */
export async function erasure(): Promise<CaseResult[]> {
  const { file, rows } = await benchDatabase(Date.UTC(2026, 10, 1));
  const dir = mkdtempSync(join(tmpdir(), 'auditql-bench-erasure-'));
  const copy = join(dir, 'erasure.sqlite');
  copyFileSync(file, copy);
  const ds = await openDatabase(createSqliteDataSource({ database: copy, synchronous: 'NORMAL' }));
  const inner = createStore(ds, { ownsConnection: true });
  if (!(await detectSearchIndex(ds, inner))) throw new Error('this SQLite has no FTS5 trigram index');
  while ((await indexPendingEntries(inner, 5000)) > 0);
  let writes: number[] = [];
  const store: AuditStore = {
    ...inner,
    async write(work) {
      const start = process.hrtime.bigint();
      try {
        return await inner.write(work);
      } finally {
        writes.push(Number(process.hrtime.bigint() - start) / 1e6);
      }
    },
  };
  const totals: number[] = [];
  const longest: number[] = [];
  const steps: number[] = [];
  let erased = 0;
  for (let round = 0; round < ROUNDS; round++) {
    writes = [];
    const start = process.hrtime.bigint();
    const result = await eraseActor({ dataSource: ds, store }, { tenantId: 'default', authorId: `user-${100 + round}`, reason: 'bench', by: { id: 'bench', name: null, type: 'operator' }, operation: 'bench' });
    totals.push(Number(process.hrtime.bigint() - start) / 1e6);
    erased = result.erasedEntries;
    // Writes: the pseudonym key, the batches (the last with the record), the search index merge steps.
    steps.push(writes.length - 1);
    longest.push(Math.max(...writes.slice(1)));
  }
  await inner.close();
  await ds.destroy();
  rmSync(dir, { recursive: true, force: true });
  const entries = rows.toLocaleString('en');
  return [
    {
      case: `erasure: longest transaction (${entries} entries)`,
      metric: 'ms median',
      value: median(longest),
      baseline: null,
      ratio: null,
      target: '≤ 50 ms: other writes wait no longer',
      met: median(longest) <= 50,
      detail: `batches of 200 and search index merge steps (${median(steps)} transactions in all); ${erased} entries erased per round; ${ROUNDS} rounds`,
    },
    {
      case: `erasure: one author in all (${entries} entries)`,
      metric: 'ms median',
      value: median(totals),
      baseline: null,
      ratio: null,
      target: '≤ 60 s',
      met: median(totals) <= 60_000,
      detail: `${erased} entries, search index merge and WAL truncation included; ${ROUNDS} rounds`,
    },
  ];
}
