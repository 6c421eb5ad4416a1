import Database from 'better-sqlite3';
import { createSqliteDataSource, openDatabase } from '../../src/db/data-source.js';
import { createStore } from '../../src/db/store.js';
import { detectSearchIndex, indexPendingEntries } from '../../src/db/search-index.js';
import { countAuditLogs, listAuditLogs } from '../../src/services/audit-log-query.js';
import { parseAuditLogFilter } from '../../src/services/audit-log-filter.js';
import { benchDatabase } from '../dataset.js';
import { median, type CaseResult } from '../stats.js';

/** Rare, absent, medium and common needles in the benchmark data (names "Change <n>", authors "User <n>"). */
const NEEDLES = ['change 12341', 'zzzq', 'user 42', 'upd'];
const RUNS = 3;

const SEARCHED = ['name', 'resource', 'resource_id', 'action', 'author_name'];
const LIKE = `(${SEARCHED.map((c) => `LOWER("${c}") LIKE ? ESCAPE '\\'`).join(' OR ')})`;

/**
 * `auditLogs(filter: { search })`: a page of 50 newest first and its `totalCount`, through the services
 * as the resolver calls them (the trigram index, its unindexed tail, the page plan), against the
 * `LOWER(…) LIKE` scan over the five fields that searches used before the index, on the same file.
 * The index is built once on the cached database (≈35 µs per entry).
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
  const time = async (fn: () => unknown) => {
    const t = process.hrtime.bigint();
    await fn();
    return Number(process.hrtime.bigint() - t) / 1e6;
  };
  const results: CaseResult[] = [];
  for (const needle of NEEDLES) {
    const pattern = `%${needle}%`;
    const filter = parseAuditLogFilter({ search: needle }, 'default');
    const page: number[] = [];
    const count: number[] = [];
    const basePage: number[] = [];
    const baseCount: number[] = [];
    let matches = 0;
    for (let run = 0; run < RUNS; run++) {
      basePage.push(await time(() => scanPage.all(...SEARCHED.map(() => pattern))));
      page.push(await time(() => listAuditLogs(deps, filter, 'NEWEST_FIRST', { limit: 51, inverted: false })));
      baseCount.push(await time(() => scanCount.get(...SEARCHED.map(() => pattern))));
      count.push(await time(async () => (matches = await countAuditLogs(deps, filter))));
    }
    const value = median(page);
    const baseline = median(basePage);
    results.push({
      case: `search "${needle}" (${rows.toLocaleString('en')} entries)`,
      metric: 'ms median page',
      value,
      baseline,
      ratio: value / baseline,
      target: 'page ≤ 50 ms; count ≤ the scan',
      met: value <= 50 && median(count) <= median(baseCount) * 1.1,
      detail: `${matches.toLocaleString('en')} matches; count ${median(count).toFixed(1)} ms vs scan ${median(baseCount).toFixed(1)} ms; ${RUNS} runs`,
    });
  }
  raw.close();
  await deps.store.close();
  await ds.destroy();
  return results;
}
