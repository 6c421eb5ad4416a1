import Database from 'better-sqlite3';
import { createSqliteDataSource, openDatabase } from '../../src/db/data-source.js';
import { createStore } from '../../src/db/store.js';
import { countAuditLogs } from '../../src/services/audit-log-query.js';
import { parseAuditLogFilter } from '../../src/services/audit-log-filter.js';
import type { AuditLogFilterInput } from '../../src/services/audit-log-filter.js';
import { benchDatabase, RESOURCES } from '../dataset.js';
import { interleave, time, type CaseResult } from '../stats.js';

const DAY = 86_400_000;

/**
 * `auditLogs { totalCount }` through the service as the resolver calls it, for the filters a list view
 * sends, against one raw `COUNT(*)` with the same conditions on the same file (counts checked equal);
 * interleaved rounds, both warm.
 */
export async function totalCount(): Promise<CaseResult[]> {
  const end = Date.UTC(2026, 10, 1);
  const { file, rows } = await benchDatabase(end);
  const ds = await openDatabase(createSqliteDataSource({ database: file }));
  const deps = { dataSource: ds, store: createStore(ds) };
  const raw = new Database(file, { readonly: true });
  const from = end - 30 * DAY;
  const busiest = RESOURCES[0]!;
  const cases: Array<{ name: string; input: AuditLogFilterInput; where: string; params: unknown[] }> = [
    { name: 'everything', input: {}, where: '', params: [] },
    { name: 'one resource', input: { resource: [busiest] }, where: 'AND resource = ?', params: [busiest] },
    { name: 'one resource, 30 days', input: { resource: [busiest], from: new Date(from), to: new Date(end) }, where: 'AND resource = ? AND created_at >= ? AND created_at < ?', params: [busiest, from, end] },
    { name: 'one author', input: { authorId: ['user-42'] }, where: 'AND author_id = ?', params: ['user-42'] },
  ];
  const results: CaseResult[] = [];
  for (const c of cases) {
    const filter = parseAuditLogFilter(c.input, 'default');
    const statement = raw.prepare(`SELECT COUNT(*) AS n FROM audit_log WHERE tenant_id = 'default' ${c.where}`);
    const expected = (statement.get(...c.params) as { n: number }).n;
    const counted = await countAuditLogs(deps, filter);
    if (counted !== expected) throw new Error(`totalCount (${c.name}): ${counted}, the raw COUNT(*) says ${expected}`);
    const measured = await interleave({ ours: () => time(() => countAuditLogs(deps, filter)), baseline: () => time(() => statement.get(...c.params)) });
    results.push({
      case: `totalCount, ${c.name} (${rows.toLocaleString('en')} entries)`,
      metric: 'ms median',
      value: measured.median.ours,
      baseline: measured.median.baseline,
      ratio: measured.median.ratio,
      spread: measured.spread,
      target: '≤ 1.5× raw COUNT(*), or ≤ 2 ms',
      met: measured.median.ratio <= 1.5 || measured.median.ours <= 2,
      detail: `${expected.toLocaleString('en')} entries counted (raw agrees); ${measured.ours.length} rounds each, interleaved`,
    });
  }
  raw.close();
  await deps.store.close();
  await ds.destroy();
  return results;
}
