import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DataSource } from 'typeorm';
import { createSqliteDataSource, openDatabase } from '../src/db/data-source.js';
import { createStore, type AuditStore } from '../src/db/store.js';
import type { Statement } from '../src/db/sql.js';
import { activityChart, bucketBounds, type ActivityGroupBy, type ActivityInterval } from '../src/services/activity-chart.js';
import { countAuditLogs } from '../src/services/audit-log-query.js';
import { parseAuditLogFilter } from '../src/services/audit-log-filter.js';
import { planRollupRanges } from '../src/services/rollup-count.js';
import { random, seed, type SeedRow } from './helpers/seed.js';

const HOUR = 3_600_000;
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 1, 20); // 20 Feb 2026: the range spans Europe's and North America's spring DST changes
const SPAN = 70 * DAY;
const RESOURCES = ['posts', 'users', 'orders'];
const ACTIONS = ['create', 'update', 'delete'];

let dir: string;
let dataSource: DataSource;
let store: AuditStore;
const statements: Statement[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'auditql-rollup-'));
  dataSource = await openDatabase(createSqliteDataSource({ database: join(dir, 'audit.sqlite') }));
  store = createStore(dataSource, { ownsConnection: false, onRead: (statement) => statements.push(statement) });
  const next = random(5);
  const rows: SeedRow[] = [];
  const pick = <T>(list: readonly T[]) => list[Math.floor(next() * list.length)]!;
  for (let i = 0; i < 4000; i++) {
    // A quarter of the entries sit on or next to a boundary: UTC midnights, hours, half and quarter hours.
    const base = T0 + Math.floor(next() * SPAN);
    const at = i % 4 === 0 ? base - (base % pick([DAY, HOUR, HOUR / 2, HOUR / 4])) + pick([-1, 0, 0, 1]) : base;
    rows.push({ resource: pick(RESOURCES), action: pick(ACTIONS), tenantId: i % 10 === 0 ? 'other' : 'default', createdAt: new Date(at) });
  }
  // Around 1970, where a rollup key (`created_at - created_at % unit`) is no floor: -1 lands in the row of 0.
  for (const at of [-DAY - 1, -HOUR, -1, 0, 1, HOUR / 4 - 1, HOUR / 4, DAY - 1, DAY]) rows.push({ resource: 'posts', action: 'create', tenantId: 'default', createdAt: new Date(at) });
  await seed(dataSource, rows);
  // Deleted entries leave the rollups too (retention deletes this way).
  await dataSource.query(`DELETE FROM "audit_log" WHERE "id" % 13 = 0`);
});

afterAll(async () => {
  await store.close();
  await dataSource.destroy();
  rmSync(dir, { recursive: true, force: true });
});

async function countDirect(tenant: string, from: number | undefined, to: number | undefined, resource?: string[], action?: string[], group?: 'action' | 'resource') {
  const where: string[] = ['"tenant_id" = ?'];
  const params: unknown[] = [tenant];
  if (from !== undefined) where.push('"created_at" >= ?'), params.push(from);
  if (to !== undefined) where.push('"created_at" < ?'), params.push(to);
  if (resource) where.push(`"resource" IN (${resource.map(() => '?').join(', ')})`), params.push(...resource);
  if (action) where.push(`"action" IN (${action.map(() => '?').join(', ')})`), params.push(...action);
  const rows = (await dataSource.query(
    `SELECT ${group ? `"${group}"` : "''"} AS "key", COUNT(*) AS "n" FROM "audit_log" WHERE ${where.join(' AND ')} GROUP BY 1`,
    params,
  )) as Array<{ key: string; n: number }>;
  return rows;
}

describe('totalCount from the rollups', () => {
  it('equals COUNT(*) over random ranges, open ends, boundary-aligned ends and filters', async () => {
    const next = random(17);
    const pick = <T>(list: readonly T[]) => list[Math.floor(next() * list.length)]!;
    const end = (): number | undefined => {
      const kind = pick(['open', 'ms', 'hour', 'day', 'half', 'quarter']);
      if (kind === 'open') return undefined;
      const at = T0 - 2 * DAY + Math.floor(next() * (SPAN + 4 * DAY));
      const unit = { ms: 1, hour: HOUR, day: DAY, half: HOUR / 2, quarter: HOUR / 4 }[kind]!;
      return at - (at % unit);
    };
    statements.length = 0;
    for (let i = 0; i < 300; i++) {
      let from = end();
      let to = end();
      if (from !== undefined && to !== undefined && from > to) [from, to] = [to, from];
      const resource = next() < 0.4 ? [pick(RESOURCES)] : next() < 0.2 ? ['posts', 'orders'] : undefined;
      const action = next() < 0.3 ? [pick(ACTIONS)] : undefined;
      const tenant = next() < 0.2 ? 'other' : 'default';
      const filter = parseAuditLogFilter({ from: from === undefined ? null : new Date(from), to: to === undefined ? null : new Date(to), resource, action }, tenant);
      const [expected] = await countDirect(tenant, from, to, resource, action);
      expect(await countAuditLogs({ dataSource, store }, filter), `${tenant} [${from}, ${to}) ${resource} ${action}`).toBe(Number(expected?.n ?? 0));
    }
    // The rollups answered (a daily one for ranges of several days: per column, or by pairs for filters on both).
    const daily = (table: string) => statements.filter((s) => s.sql.includes(`"${table}" x`)).length;
    expect(daily('audit_activity_daily_by') + daily('audit_activity_daily')).toBeGreaterThan(100);
    expect(daily('audit_activity_daily_by')).toBeGreaterThan(10);
    expect(daily('audit_activity_daily')).toBeGreaterThan(10);
  });

  it('is exact around 1970, where a rollup key is not the floor of a time before it', async () => {
    for (const [from, to] of [[-1000, HOUR], [0, HOUR / 4], [-2 * DAY, 3 * DAY], [0, 2 * DAY], [-HOUR, DAY + 1]] as const) {
      for (const action of [undefined, ['create']]) {
        const filter = parseAuditLogFilter({ from: new Date(from), to: new Date(to), action }, 'default');
        const [expected] = await countDirect('default', from, to, undefined, action);
        expect(await countAuditLogs({ dataSource, store }, filter), `[${from}, ${to}) ${action}`).toBe(Number(expected?.n ?? 0));
      }
    }
  });

  it('counts the entries matching a filter the rollups do not hold (author) from the entries', async () => {
    statements.length = 0;
    const filter = parseAuditLogFilter({ authorId: ['nobody'], from: new Date(T0), to: new Date(T0 + 10 * DAY) }, 'default');
    expect(await countAuditLogs({ dataSource, store }, filter)).toBe(0);
    expect(statements.some((s) => s.sql.includes('audit_activity'))).toBe(false);
  });
});

describe('activityChart from the rollups', () => {
  const zones = ['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata', 'Asia/Kathmandu', 'Australia/Lord_Howe'];
  const cases: Array<[ActivityInterval, number]> = [
    ['HOUR', 3 * DAY],
    ['DAY', 40 * DAY],
    ['WEEK', SPAN],
    ['MONTH', SPAN],
  ];
  // Filters on one column, on the other, or none: with the grouping, each combination that uses one column
  // reads the per-column rollups, and one that uses both the daily rollup by pairs and the entries.
  const filters: Array<{ resource?: string[]; action?: string[] }> = [{ resource: ['posts', 'users'] }, { action: ['create', 'delete'] }, {}];
  it.each(zones)('equals counts from the entries, bucket for bucket and group for group (%s)', async (zone) => {
    statements.length = 0;
    for (const [interval, span] of cases) {
      for (const [groupBy, { resource, action }] of [null, 'ACTION', 'RESOURCE'].flatMap((g) => filters.map((f) => [g as ActivityGroupBy | null, f] as const))) {
        // A range starting mid-hour, across the DST change of the zone where it has one (29 March in Europe, 8 March in New York).
        const from = T0 + 13 * DAY + 7 * 60_000 + (interval === 'HOUR' ? 24 * DAY : 0);
        const to = from + span;
        const filter = parseAuditLogFilter({ from: new Date(from), to: new Date(to), resource, action }, 'default');
        const buckets = await activityChart({ dataSource, store }, { filter, interval, timezone: zone, groupBy, maxBuckets: 2000 });
        const bounds = bucketBounds(from, to, interval, zone, 2000);
        expect(buckets.map((b) => [b.start.getTime(), b.end.getTime()])).toEqual(bounds);
        const column = groupBy === 'ACTION' ? 'action' : groupBy === 'RESOURCE' ? 'resource' : undefined;
        for (const [k, [s, e]] of bounds.entries()) {
          const rows = await countDirect('default', Math.max(s, from), Math.min(e, to), resource, action, column);
          const total = rows.reduce((sum, r) => sum + Number(r.n), 0);
          expect(buckets[k]!.count, `${interval} ${groupBy} ${resource} ${action} bucket ${new Date(s).toISOString()}`).toBe(total);
          if (column) {
            expect(Object.fromEntries(buckets[k]!.groups.map((g) => [g.key, g.count]))).toEqual(Object.fromEntries(rows.map((r) => [r.key, Number(r.n)])));
          }
        }
      }
    }
    for (const table of ['audit_activity_by', 'audit_activity_daily_by', 'audit_activity_daily']) {
      expect(statements.some((st) => st.sql.includes(`"${table}" x`))).toBe(true);
    }
  });

  it('reads a Berlin day as its UTC day less and plus an hour or two, each stretch of hours once', () => {
    const from = Date.UTC(2026, 2, 1, 23);
    const bounds = bucketBounds(from, from + 30 * DAY, 'DAY', 'Europe/Berlin', 100);
    const { segments, terms } = planRollupRanges(bounds);
    expect(segments.filter((s) => s.source === 'entries')).toEqual([]);
    // One UTC day per bucket, each read once.
    expect(segments.filter((s) => s.source === 'daily').length).toBe(bounds.length);
    const hours = segments.filter((s) => s.source === 'hourly').reduce((sum, s) => sum + (s.end - s.start) / HOUR, 0);
    expect(hours).toBeLessThanOrEqual(2 * (bounds.length + 1));
    expect(terms.every((list) => list.length <= 3)).toBe(true);
    // Kolkata (+05:30): the half hour at each end of a day comes from the entries.
    const kolkata = planRollupRanges(bucketBounds(Date.UTC(2026, 2, 1, 18, 30), Date.UTC(2026, 2, 11, 18, 30), 'DAY', 'Asia/Kolkata', 100));
    expect(kolkata.segments.filter((s) => s.source === 'entries').every((s) => s.end - s.start === HOUR / 2)).toBe(true);
    // Unless the finest rollup counts quarter hours (actions do): then no entry is read for them.
    const quarters = planRollupRanges(bucketBounds(Date.UTC(2026, 2, 1, 18, 30), Date.UTC(2026, 2, 11, 18, 30), 'DAY', 'Asia/Kolkata', 100), HOUR / 4);
    expect(quarters.segments.filter((s) => s.source === 'entries')).toEqual([]);
    expect(quarters.segments.filter((s) => s.source === 'hourly').every((s) => s.start % (HOUR / 4) === 0 && s.end % (HOUR / 4) === 0)).toBe(true);
  });
});
