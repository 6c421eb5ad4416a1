import Database from 'better-sqlite3';
import { createStore } from '../../src/db/store.js';
import { createSqliteDataSource, openDatabase } from '../../src/db/data-source.js';
import { activityChart, bucketBounds, type ActivityBucket } from '../../src/services/activity-chart.js';
import { parseAuditLogFilter } from '../../src/services/audit-log-filter.js';
import { defaultLimits } from '../../src/config.js';
import { benchDatabase } from '../dataset.js';
import { interleave, scaled, time, type CaseResult } from '../stats.js';

const DAY = 86_400_000;
const ZONE = 'Europe/Berlin';

/**
 * The same chart without the product: bucket bounds at local midnights in the zone (the same calendar
 * arithmetic), one raw `GROUP BY` over the entries of the range joined to those bounds, then zero-filled
 * and grouped in JS, sorted as the API sorts groups. What a careful developer would write by hand.
 */
export function rawChart(raw: Database.Database, from: number, to: number, grouped: boolean, zone = ZONE): ActivityBucket[] {
  const { bounds, sql, params } = chartByHandQuery(from, to, grouped, zone, () => '?');
  return assembleChart(bounds, raw.prepare(sql).all(...params) as ChartRow[], grouped);
}

type ChartRow = { i: number | string; key: string; n: number | string };

/**
 * The statement of the chart by hand: the buckets' bounds (the zone's local midnights, clipped to the
 * range) as a VALUES list joined to the entries, counted per bucket (and action). `placeholder(n)` writes
 * the n-th parameter in the dialect's form.
 */
export function chartByHandQuery(from: number, to: number, grouped: boolean, zone: string, placeholder: (n: number) => string) {
  const bounds = bucketBounds(from, to, 'DAY', zone, defaultLimits.maxChartBuckets);
  const clipped = bounds.map(([s, e], i) => [i, Math.max(s, from), Math.min(e, to)] as const).filter(([, s, e]) => s < e);
  let n = 0;
  const values = clipped.map(() => `(${placeholder(++n)}, ${placeholder(++n)}, ${placeholder(++n)})`).join(', ');
  const sql = `WITH b(i, s, e) AS (VALUES ${values})
     SELECT b.i AS i, ${grouped ? 'a.action' : "''"} AS key, COUNT(*) AS n
     FROM b JOIN audit_log a ON a.tenant_id = 'default' AND a.created_at >= b.s AND a.created_at < b.e
     GROUP BY b.i${grouped ? ', a.action' : ''}`;
  return { bounds, sql, params: clipped.flat() };
}

/** Zero-filled buckets from the counted rows, groups sorted as the API sorts them. */
export function assembleChart(bounds: Array<readonly [number, number]>, rows: ChartRow[], grouped: boolean): ActivityBucket[] {
  const buckets: ActivityBucket[] = bounds.map(([s, e]) => ({ start: new Date(s), end: new Date(e), count: 0, groups: [] }));
  for (const row of rows) {
    const bucket = buckets[Number(row.i)]!;
    bucket.count += Number(row.n);
    if (grouped) bucket.groups.push({ key: row.key, count: Number(row.n) });
  }
  for (const bucket of buckets) bucket.groups.sort((x, y) => y.count - x.count || (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
  return buckets;
}

/** `activityChart` DAY × 30 days in Europe/Berlin, plain and grouped by action, against the same chart in raw SQL + JS. */
export async function chart(): Promise<CaseResult[]> {
  const end = Date.UTC(2026, 10, 1);
  const { file, rows } = await benchDatabase(end);
  const ds = await openDatabase(createSqliteDataSource({ database: file }));
  const deps = { dataSource: ds, store: createStore(ds) };
  const raw = new Database(file, { readonly: true });
  const rounds = Math.max(5, Math.min(9, scaled(9)));
  const from = end - 30 * DAY;
  const results: CaseResult[] = [];
  for (const groupBy of [null, 'ACTION'] as const) {
    const ours = () =>
      activityChart(deps, {
        filter: parseAuditLogFilter({ from: new Date(from), to: new Date(end) }, 'default'),
        interval: 'DAY',
        timezone: ZONE,
        groupBy,
        maxBuckets: defaultLimits.maxChartBuckets,
      });
    // Both answer the same: otherwise the comparison is not of the same work.
    const [a, b] = [await ours(), rawChart(raw, from, end, groupBy !== null)];
    if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error(`chart${groupBy ? ' by action' : ''}: the raw baseline answers differently from the service`);
    const measured = await interleave({ ours: () => time(ours), baseline: () => time(() => rawChart(raw, from, end, groupBy !== null)), rounds });
    const value = measured.median.ours;
    results.push({
      case: `chart DAY×30, ${ZONE}${groupBy ? ', by action' : ''} (${rows.toLocaleString('en')} entries)`,
      metric: 'ms median',
      value,
      baseline: measured.median.baseline,
      ratio: measured.median.ratio,
      spread: measured.spread,
      target: '≤ 100 ms',
      met: value <= 100,
      detail: `${rounds} rounds each, interleaved; ${a.length} buckets, zero-filled; baseline: the same buckets (zone, zero fill${groupBy ? ', groups' : ''}) from one raw GROUP BY + JS, same answer checked`,
    });
  }
  raw.close();
  await deps.store.close();
  await ds.destroy();
  return results;
}
