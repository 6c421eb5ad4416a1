import { DateTime, type DurationLikeObject } from 'luxon';
import type { DataSource } from 'typeorm';
import { AuditLog } from '../db/entities/audit-log.entity.js';
import { read } from '../db/transaction.js';
import { applyAuditLogFilter, type AuditLogFilter } from './audit-log-filter.js';
import { badUserInput } from './errors.js';

export type ActivityInterval = 'HOUR' | 'DAY' | 'WEEK' | 'MONTH';
export type ActivityGroupBy = 'ACTION' | 'RESOURCE' | 'AUTHOR';

export interface ActivityGroup {
  key: string;
  count: number;
}
export interface ActivityBucket {
  start: Date;
  end: Date;
  count: number;
  groups: ActivityGroup[];
}

const UNIT = { HOUR: 'hour', DAY: 'day', WEEK: 'week', MONTH: 'month' } as const;
const STEP: Record<ActivityInterval, DurationLikeObject> = { HOUR: { hours: 1 }, DAY: { days: 1 }, WEEK: { weeks: 1 }, MONTH: { months: 1 } };
/** The range when the filter gives none: 48 hours, 30 days, 26 weeks or 12 months back from now. */
export const DEFAULT_SPAN: Record<ActivityInterval, DurationLikeObject> = { HOUR: { hours: 48 }, DAY: { days: 30 }, WEEK: { weeks: 26 }, MONTH: { months: 12 } };
/** The shortest a bucket can be (a DST day is 23 h), to refuse oversized ranges before building them. */
const SHORTEST_MS: Record<ActivityInterval, number> = { HOUR: 3_600_000, DAY: 23 * 3_600_000, WEEK: (7 * 24 - 1) * 3_600_000, MONTH: (28 * 24 - 1) * 3_600_000 };
const GROUP_COLUMN: Record<ActivityGroupBy, string> = { ACTION: 'a.action', RESOURCE: 'a.resource', AUTHOR: 'a.authorId' };

export function assertTimeZone(zone: string): void {
  if (!DateTime.now().setZone(zone).isValid) throw badUserInput(`"${zone}" is not a known IANA time zone`, 'timezone');
}

/**
 * Bucket boundaries at local interval starts in `zone` (ISO weeks start on Monday). Calendar arithmetic
 * in the zone makes a DST day 23 or 25 hours long, as a person reading the chart expects.
 */
export function bucketBounds(from: number, to: number, interval: ActivityInterval, zone: string, maxBuckets: number): Array<[number, number]> {
  if (Math.ceil((to - from) / SHORTEST_MS[interval]) + 1 > maxBuckets) {
    throw badUserInput(`That range needs more than ${maxBuckets} ${UNIT[interval]} buckets; choose a shorter range or a longer interval`, 'interval');
  }
  const bounds: Array<[number, number]> = [];
  let start = DateTime.fromMillis(from, { zone }).startOf(UNIT[interval]);
  while (start.toMillis() < to) {
    const end = start.plus(STEP[interval]);
    bounds.push([start.toMillis(), end.toMillis()]);
    start = end;
  }
  return bounds;
}

export interface ChartRequest {
  filter: AuditLogFilter;
  interval: ActivityInterval;
  timezone: string;
  groupBy?: ActivityGroupBy | null;
  maxBuckets: number;
  now?: number;
}

/**
 * Counts per bucket in one statement: the buckets are a VALUES table joined on the created_at range,
 * so each bucket is an index range scan and the same SQL runs on SQLite and PostgreSQL. Only entries
 * inside the filter's [from, to) are counted, so the buckets add up to `auditLogs.totalCount` for that range.
 */
export async function activityChart(dataSource: DataSource, request: ChartRequest): Promise<ActivityBucket[]> {
  assertTimeZone(request.timezone);
  const now = request.now ?? Date.now();
  const to = request.filter.to ?? now;
  const from = request.filter.from ?? DateTime.fromMillis(to, { zone: request.timezone }).minus(DEFAULT_SPAN[request.interval]).toMillis();
  if (from > to) throw badUserInput('filter.from must not be after filter.to', 'filter.from');
  const bounds = bucketBounds(from, to, request.interval, request.timezone, request.maxBuckets);
  if (bounds.length === 0) return [];
  const filter: AuditLogFilter = { ...request.filter, from, to };
  const values = bounds.map(([s, e], i) => `(${i}, ${s}, ${e})`).join(', ');
  const group = request.groupBy ? GROUP_COLUMN[request.groupBy] : undefined;

  const rows = await read(dataSource, (manager) => {
    const qb = manager
      .createQueryBuilder()
      .addCommonTableExpression(`VALUES ${values}`, 'b', { columnNames: ['i', 's', 'e'] })
      .select('b.i', 'i')
      .addSelect('COUNT(*)', 'count')
      .from(AuditLog, 'a')
      .innerJoin('b', 'b', 'a.createdAt >= b.s AND a.createdAt < b.e')
      .groupBy('b.i');
    if (group) qb.addSelect(group, 'key').addGroupBy(group);
    return applyAuditLogFilter(qb, filter).getRawMany<{ i: number | string; count: number | string; key?: string | null }>();
  });

  const buckets: ActivityBucket[] = bounds.map(([s, e]) => ({ start: new Date(s), end: new Date(e), count: 0, groups: [] }));
  for (const row of rows) {
    const bucket = buckets[Number(row.i)]!;
    const count = Number(row.count);
    bucket.count += count;
    if (group) bucket.groups.push({ key: row.key ?? '', count });
  }
  for (const bucket of buckets) bucket.groups.sort((x, y) => y.count - x.count || (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
  return buckets;
}
