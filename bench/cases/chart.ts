import { createStore } from '../../src/db/store.js';
import Database from 'better-sqlite3';
import { createSqliteDataSource, openDatabase } from '../../src/db/data-source.js';
import { activityChart } from '../../src/services/activity-chart.js';
import { parseAuditLogFilter } from '../../src/services/audit-log-filter.js';
import { defaultLimits } from '../../src/config.js';
import { benchDatabase } from '../dataset.js';
import { median, scaled, type CaseResult } from '../stats.js';

const DAY = 86_400_000;

/** `activityChart` DAY × 30 days in Europe/Berlin, plain and grouped by action, against a raw GROUP BY. */
export async function chart(): Promise<CaseResult[]> {
  const end = Date.UTC(2026, 10, 1);
  const { file, rows } = await benchDatabase(end);
  const ds = await openDatabase(createSqliteDataSource({ database: file }));
  const deps = { dataSource: ds, store: createStore(ds) };
  const raw = new Database(file, { readonly: true });
  const rawDaily = raw.prepare(`SELECT (created_at + 3600000) / 86400000 AS d, COUNT(*) AS n FROM audit_log WHERE tenant_id = 'default' AND created_at >= ? AND created_at < ? GROUP BY d`);
  const rawGrouped = raw.prepare(`SELECT (created_at + 3600000) / 86400000 AS d, action, COUNT(*) AS n FROM audit_log WHERE tenant_id = 'default' AND created_at >= ? AND created_at < ? GROUP BY d, action`);
  const runs = scaled(9) > 9 ? 9 : Math.max(3, scaled(9));
  const from = end - 30 * DAY;
  const results: CaseResult[] = [];
  for (const groupBy of [null, 'ACTION'] as const) {
    const ours: number[] = [];
    const baseline: number[] = [];
    for (let i = 0; i < runs; i++) {
      let t = process.hrtime.bigint();
      (groupBy ? rawGrouped : rawDaily).all(from, end);
      baseline.push(Number(process.hrtime.bigint() - t) / 1e6);
      t = process.hrtime.bigint();
      const buckets = await activityChart(deps, {
        filter: parseAuditLogFilter({ from: new Date(from), to: new Date(end) }, 'default'),
        interval: 'DAY',
        timezone: 'Europe/Berlin',
        groupBy,
        maxBuckets: defaultLimits.maxChartBuckets,
      });
      ours.push(Number(process.hrtime.bigint() - t) / 1e6);
      if (buckets.length < 30) throw new Error('chart returned too few buckets');
    }
    const value = median(ours);
    const base = median(baseline);
    results.push({
      case: `chart DAY×30, Europe/Berlin${groupBy ? ', by action' : ''} (${rows.toLocaleString('en')} entries)`,
      metric: 'ms median',
      value,
      baseline: base,
      ratio: value / base,
      target: '≤ 100 ms',
      met: value <= 100,
      detail: `${runs} runs; raw GROUP BY of the same range ${base.toFixed(1)} ms`,
    });
  }
  raw.close();
  await deps.store.close();
  await ds.destroy();
  return results;
}
