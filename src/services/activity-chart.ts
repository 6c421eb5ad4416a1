import { DateTime, IANAZone, type DurationLikeObject } from 'luxon';
import { AuditLog } from '../db/entities/audit-log.entity.js';
import type { ReadOptions } from '../db/store.js';
import { toStatement } from './audit-log-query.js';
import type { ServiceDeps } from './deps.js';
import { applyAuditLogFilter, type AuditLogFilter } from './audit-log-filter.js';
import { badUserInput } from '../shared/errors.js';
import { countFromRollups, rollupsAnswer, type RollupGroup } from './rollup-count.js';

type Deps = Pick<ServiceDeps, 'dataSource' | 'store'>;

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

/**
 * IANA names only (`Europe/Berlin`, `UTC`, `Etc/GMT+5`). Luxon also takes `system` and `local` (the server's
 * own zone, which differs between machines) and fixed offsets such as `UTC+99`; none of them is a time zone
 * a chart can promise anything about.
 */
export function assertTimeZone(zone: string): void {
  // Remembered: luxon builds an Intl.DateTimeFormat to answer (0.3 ms, as much as the chart's statement).
  let valid = knownZones.get(zone);
  if (valid === undefined) {
    valid = IANAZone.isValidZone(zone);
    if (knownZones.size >= 1_000) knownZones.clear();
    knownZones.set(zone, valid);
  }
  if (!valid) throw badUserInput(`"${zone}" is not a known IANA time zone`, 'timezone');
}
const knownZones = new Map<string, boolean>();

/**
 * A zone's UTC offset (minutes) at an instant, remembered per zone and instant: luxon asks Intl for the
 * parts of a formatted date each time (~10 µs), and charts ask about the same local midnights again and again.
 */
function offsetAt(zone: string, at: number): number {
  const key = `${zone} ${at}`;
  let offset = zoneOffsets.get(key);
  if (offset === undefined) {
    offset = IANAZone.create(zone).offset(at);
    // A few hundred kilobytes at most; dropped whole when full (a chart needs a few dozen).
    if (zoneOffsets.size >= 20_000) zoneOffsets.clear();
    zoneOffsets.set(key, offset);
  }
  return offset;
}
const zoneOffsets = new Map<string, number>();

/**
 * Bucket boundaries at local interval starts in `zone` (ISO weeks start on Monday). Calendar arithmetic
 * in the zone makes a DST day 23 or 25 hours long, as a person reading the chart expects.
 */
/** How many buckets a range needs at most (checked before any is built). */
export function bucketCountBound(from: number, to: number, interval: ActivityInterval): number {
  return Math.ceil((to - from) / SHORTEST_MS[interval]) + 1;
}

export function bucketBounds(from: number, to: number, interval: ActivityInterval, zone: string, maxBuckets: number): Array<[number, number]> {
  if (bucketCountBound(from, to, interval) > maxBuckets) {
    throw badUserInput(`That range needs more than ${maxBuckets} ${UNIT[interval]} buckets; choose a shorter range or a longer interval`, 'interval');
  }
  const bounds: Array<[number, number]> = [];
  const first = DateTime.fromMillis(from, { zone }).startOf(UNIT[interval]);
  // Without a DateTime per bucket (luxon's calendar arithmetic took 0.74 ms of a 30-day chart): an hour is
  // 3,600,000 ms in luxon too, and a day is 86,400,000 ms wherever the zone's offset is the same at both
  // ends, which is what luxon's `plus({ days: 1 })` gives then; across an offset change, luxon decides.
  if (interval === 'HOUR') {
    for (let start = first.toMillis(); start < to; start += 3_600_000) bounds.push([start, start + 3_600_000]);
    return bounds;
  }
  if (interval === 'DAY') {
    let start = first.toMillis();
    let offset = offsetAt(zone, start);
    while (start < to) {
      let end = start + 86_400_000;
      let endOffset = offsetAt(zone, end);
      if (endOffset !== offset) {
        end = DateTime.fromMillis(start, { zone }).plus(STEP.DAY).toMillis();
        endOffset = offsetAt(zone, end);
      }
      bounds.push([start, end]);
      start = end;
      offset = endOffset;
    }
    return bounds;
  }
  let start = first;
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
const ROLLUP_GROUP: Partial<Record<ActivityGroupBy, RollupGroup>> = { ACTION: 'action', RESOURCE: 'resource' };

interface CountRow {
  i: number | string;
  count: number | string;
  key?: string | null;
}

/** The rollups answer when the filter and grouping use only their columns (kept by triggers on SQLite and PostgreSQL). */
function rollupApplies(deps: Deps, filter: AuditLogFilter, groupBy: ActivityGroupBy | null | undefined): boolean {
  return rollupsAnswer(deps.store, filter) && (!groupBy || ROLLUP_GROUP[groupBy] !== undefined);
}

/** Counts entries in [s, e) ranges, each tagged with its bucket, straight from the entries. */
function countEntries(deps: Deps, ranges: Array<[number, number, number]>, filter: AuditLogFilter, group: string | undefined, reads: ReadOptions): Promise<CountRow[]> {
  if (ranges.length === 0) return Promise.resolve([]);
  const values = ranges.map(([i, s, e]) => `(${i}, ${s}, ${e})`).join(', ');
  const qb = deps.dataSource
    .createQueryBuilder()
    .addCommonTableExpression(`VALUES ${values}`, 'b', { columnNames: ['i', 's', 'e'] })
    .select('b.i', 'i')
    .addSelect('COUNT(*)', 'count')
    .from(AuditLog, 'a')
    .innerJoin('b', 'b', 'a.createdAt >= b.s AND a.createdAt < b.e')
    .groupBy('b.i');
  if (group) qb.addSelect(group, 'key').addGroupBy(group);
  return deps.store.read<CountRow>(toStatement(applyAuditLogFilter(qb, filter)), reads);
}

/**
 * Counts per bucket. When the rollups apply (filter and grouping on tenant, action and resource only), each
 * bucket is split into whole UTC days (daily rollup), the hours between its edges and the nearest UTC
 * midnight (hourly rollup, added or subtracted) and what does not fill an hour (zones with 30- or 45-minute
 * offsets, the filter's own from/to), counted from the entries; see rollup-count.ts. Otherwise every bucket is
 * counted from the entries in one statement (a VALUES table joined on the time range; the same SQL on
 * SQLite and PostgreSQL). Only entries inside the filter's [from, to) count, so the buckets add up to
 * `auditLogs.totalCount` for that range.
 */
export async function activityChart(deps: Deps, request: ChartRequest, reads: ReadOptions = {}): Promise<ActivityBucket[]> {
  assertTimeZone(request.timezone);
  const now = request.now ?? Date.now();
  const to = request.filter.to ?? now;
  const from = request.filter.from ?? DateTime.fromMillis(to, { zone: request.timezone }).minus(DEFAULT_SPAN[request.interval]).toMillis();
  if (from > to) throw badUserInput('filter.from must not be after filter.to', 'filter.from');
  const bounds = bucketBounds(from, to, request.interval, request.timezone, request.maxBuckets);
  if (bounds.length === 0) return [];
  const filter: AuditLogFilter = { ...request.filter, from, to };
  const group = request.groupBy ? GROUP_COLUMN[request.groupBy] : undefined;

  const buckets: ActivityBucket[] = bounds.map(([s, e]) => ({ start: new Date(s), end: new Date(e), count: 0, groups: [] }));
  const clipped = bounds.map(([s, e]) => [Math.max(s, from), Math.min(e, to)] as const);
  if (rollupApplies(deps, filter, request.groupBy)) {
    const counts = await countFromRollups(deps.store, filter, clipped, request.groupBy ? ROLLUP_GROUP[request.groupBy] : undefined, reads);
    counts.forEach((counted, index) => {
      buckets[index]!.count = counted.count;
      if (counted.groups) buckets[index]!.groups = sortGroups(counted.groups);
    });
    return buckets;
  }
  const ranges: Array<[number, number, number]> = [];
  clipped.forEach(([start, end], i) => {
    if (start < end) ranges.push([i, start, end]);
  });
  const rows = await countEntries(deps, ranges, filter, group, reads);
  const groups = bounds.map(() => new Map<string, number>());
  for (const row of rows) {
    const index = Number(row.i);
    const count = Number(row.count);
    if (count === 0) continue;
    buckets[index]!.count += count;
    if (group) groups[index]!.set(row.key ?? '', (groups[index]!.get(row.key ?? '') ?? 0) + count);
  }
  buckets.forEach((bucket, index) => {
    bucket.groups = sortGroups(groups[index]!);
  });
  return buckets;
}

/** Largest first, then by key. */
function sortGroups(groups: Map<string, number>): ActivityGroup[] {
  const list = [...groups].map(([key, count]) => ({ key, count }));
  return list.sort((x, y) => y.count - x.count || (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
}
