import Database from 'better-sqlite3';
import { createSqliteDataSource, openDatabase } from '../../src/db/data-source.js';
import { createStore } from '../../src/db/store.js';
import { detectSearchIndex, indexPendingEntries } from '../../src/db/search-index.js';
import { countAuditLogs, listAuditLogs } from '../../src/services/audit-log-query.js';
import { parseAuditLogFilter } from '../../src/services/audit-log-filter.js';
import { benchDatabase } from '../dataset.js';
import { interleave, type CaseResult } from '../stats.js';
import { time } from '../stats.js';

/** Rare, absent, medium and common needles in the benchmark data (names "Change <n>", authors "User <n>"). */
const NEEDLES = ['change 12341', 'zzzq', 'user 42', 'upd'];

const SEARCHED = ['name', 'resource', 'resource_id', 'action', 'author_name'];
const LIKE = `(${SEARCHED.map((c) => `LOWER("${c}") LIKE ? ESCAPE '\\'`).join(' OR ')})`;

/**
 * `auditLogs(filter: { search })`: a page of 50 newest first and its `totalCount`, through the services
 * as the resolver calls them (the trigram index, its unindexed tail, the page plan), against the
 * `LOWER(…) LIKE` scan over the five fields that searches used before the index, on the same file;
 * interleaved rounds, both warm. The index is built once on the cached database (≈35 µs per entry).
 */
export async function search(): Promise<CaseResult[]> {
  const { file, rows } = await benchDatabase(Date.UTC(2026, 10, 1));
  const ds = await openDatabase(createSqliteDataSource({ database: file }));
  const deps = { dataSource: ds, store: createStore(ds) };
  if (!(await detectSearchIndex(ds, deps.store))) throw new Error('this SQLite has no FTS5 trigram index');
  while ((await indexPendingEntries(deps.store, 5000)) > 0);
  const raw = new Database(file, { readonly: true });
  const scanPage = raw.prepare(`SELECT * FROM audit_log WHERE tenant_id = 'default' AND ${LIKE} ORDER BY created_at DESC, id DESC LIMIT 51`);
  const scanCount = raw.prepare(`SELECT COUNT(*) AS n FROM audit_log WHERE tenant_id = 'default' AND ${LIKE}`);
  const results: CaseResult[] = [];
  for (const needle of NEEDLES) {
    const patterns = SEARCHED.map(() => `%${needle}%`);
    const filter = parseAuditLogFilter({ search: needle }, 'default');
    const page = await interleave({
      ours: () => time(() => listAuditLogs(deps, filter, 'NEWEST_FIRST', { limit: 51, inverted: false })),
      baseline: () => time(() => scanPage.all(...patterns)),
    });
    let matches = 0;
    const count = await interleave({
      ours: () => time(async () => (matches = await countAuditLogs(deps, filter))),
      baseline: () => time(() => scanCount.get(...patterns)),
    });
    const expected = (scanCount.get(...patterns) as { n: number }).n;
    if (matches !== expected) throw new Error(`search "${needle}": ${matches} counted, the scan finds ${expected}`);
    results.push({
      case: `search "${needle}" (${rows.toLocaleString('en')} entries)`,
      metric: 'ms median page',
      value: page.median.ours,
      baseline: page.median.baseline,
      ratio: page.median.ratio,
      spread: page.spread,
      target: 'page ≤ 50 ms; count ≤ the scan',
      met: page.median.ours <= 50 && count.median.ratio <= 1.1,
      detail: `${matches.toLocaleString('en')} matches (the scan agrees); totalCount ${count.median.ours.toFixed(1)} ms vs scan ${count.median.baseline.toFixed(1)} ms (ratio ${count.median.ratio.toFixed(2)}, ${count.spread}); ${page.ours.length} rounds each, interleaved`,
    });
  }
  raw.close();
  await deps.store.close();
  await ds.destroy();
  return results;
}
