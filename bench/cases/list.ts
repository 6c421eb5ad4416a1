import { createStore } from '../../src/db/store.js';
import Database from 'better-sqlite3';
import { createSqliteDataSource, openDatabase } from '../../src/db/data-source.js';
import { listAuditLogs } from '../../src/services/audit-log-query.js';
import { parseAuditLogFilter } from '../../src/services/audit-log-filter.js';
import { benchDatabase, RESOURCES } from '../dataset.js';
import { interleave, median, percentile, scaled, time, type CaseResult } from '../stats.js';

const DAY = 86_400_000;

/**
 * `auditLogs(first: 50)` with a resource and a 30-day range, at random depths of the list (deep pages
 * included), through the service as the resolver calls it, against the same page read with one raw
 * prepared statement on the same file.
 */
export async function list(): Promise<CaseResult[]> {
  const end = Date.UTC(2026, 10, 1);
  const { file, rows } = await benchDatabase(end);
  const ds = await openDatabase(createSqliteDataSource({ database: file }));
  const deps = { dataSource: ds, store: createStore(ds) };
  const raw = new Database(file, { readonly: true });
  const rawPage = raw.prepare(
    `SELECT * FROM audit_log WHERE tenant_id = 'default' AND resource = ? AND created_at >= ? AND created_at < ? AND (created_at, id) < (?, ?)
     ORDER BY created_at DESC, id DESC LIMIT 51`,
  );
  const queries = scaled(400);
  let seed = 7;
  const rnd = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32);
  const plan = Array.from({ length: queries }, () => {
    const resource = RESOURCES[Math.floor(rnd() * 10)]!;
    const to = end - Math.floor(rnd() * 60) * DAY;
    const from = to - 30 * DAY;
    // A cursor somewhere in the range: page 1 up to the last pages.
    const cursorAt = to - Math.floor(rnd() * 30 * DAY);
    return { resource, from, to, cursor: { createdAt: cursorAt, id: Number.MAX_SAFE_INTEGER } };
  });
  // Each side walks the same plan in the same order; both are warmed on the plan's first 20 pages first.
  const walker = (page: (step: (typeof plan)[number]) => unknown) => {
    let k = 0;
    return () => time(() => page(plan[k++ % plan.length]!));
  };
  const measured = await interleave({
    ours: walker((step) => {
      const filter = parseAuditLogFilter({ resource: [step.resource], from: new Date(step.from), to: new Date(step.to) }, 'default');
      return listAuditLogs(deps, filter, 'NEWEST_FIRST', { after: step.cursor, limit: 51, inverted: false });
    }),
    baseline: walker((step) => rawPage.all(step.resource, step.from, step.to, step.cursor.createdAt, step.cursor.id)),
    rounds: queries,
    warmup: 20,
  });
  const ours = measured.ours;
  const baseline = measured.baseline;
  raw.close();
  await deps.store.close();
  await ds.destroy();
  const p99 = percentile(ours, 99);
  const rawP99 = percentile(baseline, 99);
  return [
    {
      case: `list (${rows.toLocaleString('en')} entries)`,
      metric: 'ms p99',
      value: p99,
      baseline: rawP99,
      ratio: p99 / rawP99,
      target: 'p99 ≤ 2× raw and ≤ 10 ms',
      met: p99 <= 2 * rawP99 && p99 <= 10,
      spread: `p50–p99 ${median(ours).toFixed(2)}–${p99.toFixed(2)} ms`,
      detail: `${queries} pages of 50, resource + 30 days, random depth; the same pages in the same order on both sides, alternating page by page after 20 warm-up pages each; p50 ${median(ours).toFixed(2)} ms vs raw ${median(baseline).toFixed(2)} ms`,
    },
  ];
}
