import { ROLLUP_UNITS } from '../db/activity-rollups.js';
import type { AuditStore, ReadOptions } from '../db/store.js';
import type { AuditLogFilter } from './audit-log-filter.js';

const HOUR = 3_600_000;
const DAY = 86_400_000;
/** Stands for an open end of a range (no `from` / no `to`). */
export const OPEN_START = Number.MIN_SAFE_INTEGER;
export const OPEN_END = Number.MAX_SAFE_INTEGER;

/**
 * Where a part of a range is counted: the entries themselves, the finest rollup that answers (hourly, or per
 * quarter hour for actions; `hourly` below) or the daily one.
 */
type Source = 'entries' | 'hourly' | 'daily';
interface Segment {
  source: Source;
  start: number;
  end: number;
}

/** The columns a rollup holds, so the only groupings it can answer. */
export type RollupGroup = 'action' | 'resource';

/**
 * Whether the rollups can answer counts under `filter`: they hold tenant, time, action and resource, so
 * a filter on anything else (record, author, transaction, search) is counted from the entries. MySQL has
 * no rollups.
 */
export function rollupsAnswer(store: Pick<AuditStore, 'dialect'>, filter: AuditLogFilter): boolean {
  if (store.dialect === 'mysql') return false;
  return filter.resourceId === undefined && !filter.authorId && filter.transactionId === undefined && filter.search === undefined;
}

/**
 * Splits [start, end) ranges into parts each source answers exactly, with a sign per part:
 *
 * - what does not fill a whole `unit` (an hour, or a quarter hour where the finest rollup has them) at
 *   either end (the filter's own bounds, zones with 30- or 45-minute offsets) is counted from the entries,
 *   over the time index;
 * - whole UTC days from the daily rollup;
 * - the whole units between an end and the nearest UTC midnight from the finest rollup: added when the
 *   end is at most 12 hours from the midnight inside the range, otherwise the whole day is added and the
 *   hours outside the range subtracted (a day in Europe/Berlin is the UTC day minus its last hour or two
 *   plus the previous day's). The rows read per range stay ≤ about 13 hours' worth plus its days.
 *
 * Parts are shared: the hours one day-bucket subtracts are the hours the next one adds, and are read once.
 * Both rollups are kept by triggers in the transactions that write and delete entries, and all parts are
 * read in one statement (one snapshot), so the sum is exactly COUNT(*) over the range. Rollup keys are
 * `created_at - created_at % unit`, which is the floor only for times at or after 1970 (a time just before
 * it lands in the row of 1 January 1970): anything before 2 January 1970 is counted from the entries.
 */
export function planRollupRanges(
  ranges: ReadonlyArray<readonly [number, number]>,
  unit: number = HOUR,
): { segments: Segment[]; terms: Array<Array<[number, 1 | -1]>> } {
  const segments: Segment[] = [];
  const ids = new Map<string, number>();
  const terms = ranges.map(() => [] as Array<[number, 1 | -1]>);
  ranges.forEach(([from, to], i) => {
    const add = (source: Source, start: number, end: number, sign: 1 | -1 = 1) => {
      if (start >= end) return;
      const key = `${source}:${start}:${end}`;
      let id = ids.get(key);
      if (id === undefined) {
        id = segments.push({ source, start, end }) - 1;
        ids.set(key, id);
      }
      terms[i]!.push([id, sign]);
    };
    let start = from;
    const end = to;
    if (start >= end) return;
    if (start < DAY) {
      add('entries', start, Math.min(end, DAY));
      start = DAY;
      if (start >= end) return;
    }
    const open = end === OPEN_END;
    // `unit` is the finest rollup's: an hour, or a quarter hour when it counts actions per quarter hour.
    const hourStart = Math.ceil(start / unit) * unit;
    const hourEnd = open ? OPEN_END : Math.floor(end / unit) * unit;
    if (hourStart >= hourEnd) {
      add('entries', start, end);
      return;
    }
    add('entries', start, hourStart);
    if (!open) add('entries', hourEnd, end);
    const dayStart = Math.ceil(hourStart / DAY) * DAY;
    const dayEnd = open ? OPEN_END : Math.floor(hourEnd / DAY) * DAY;
    if (dayStart > dayEnd) {
      // Inside one UTC day: its hours, or the day less the hours outside the range when that reads fewer.
      const hours = (hourEnd - hourStart) / HOUR;
      if (hours <= 12) add('hourly', hourStart, hourEnd);
      else {
        add('daily', dayEnd, dayStart);
        add('hourly', dayEnd, hourStart, -1);
        add('hourly', hourEnd, dayStart, -1);
      }
      return;
    }
    add('daily', dayStart, dayEnd);
    const head = (dayStart - hourStart) / HOUR;
    if (head <= 12) add('hourly', hourStart, dayStart);
    else {
      add('daily', dayStart - DAY, dayStart);
      add('hourly', dayStart - DAY, hourStart, -1);
    }
    if (open) return;
    const tail = (hourEnd - dayEnd) / HOUR;
    if (tail <= 12) add('hourly', dayEnd, hourEnd);
    else {
      add('daily', dayEnd, dayEnd + DAY);
      add('hourly', hourEnd, dayEnd + DAY, -1);
    }
  });
  return { segments, terms };
}

/**
 * The one column (action or resource) that the filter and the grouping use, when they use no more than one:
 * then the parts finer than a day are read from `audit_activity_by` (actions per quarter hour, resources per
 * hour: 20 or 50 rows an hour at 10M entries, not ~240 pairs). With no filter and no grouping, the per-action
 * rows are the fewest that add up to every entry.
 */
function singleColumn(filter: AuditLogFilter, group: RollupGroup | undefined): RollupGroup | undefined {
  const used = new Set<RollupGroup>();
  if (filter.action) used.add('action');
  if (filter.resource) used.add('resource');
  if (group) used.add(group);
  if (used.size > 1) return undefined;
  return used.size === 1 ? [...used][0] : 'action';
}

export interface RangeCount {
  count: number;
  /** Per value of the grouped column, when grouped. */
  groups?: Map<string, number>;
}

/**
 * Counts entries matching `filter` (tenant, action, resource; see `rollupsAnswer`) in each [start, end)
 * range, optionally per action or resource, from the rollups and the entries as `planRollupRanges` splits
 * them, in one statement. Exact.
 */
export async function countFromRollups(
  store: Pick<AuditStore, 'read' | 'dialect'>,
  filter: AuditLogFilter,
  ranges: ReadonlyArray<readonly [number, number]>,
  group: RollupGroup | undefined,
  reads: ReadOptions = {},
): Promise<RangeCount[]> {
  const single = singleColumn(filter, group);
  const { segments, terms } = planRollupRanges(ranges, single ? ROLLUP_UNITS.audit_activity_by[single] : HOUR);
  const results: RangeCount[] = ranges.map(() => ({ count: 0, groups: group ? new Map() : undefined }));
  if (segments.length === 0) return results;
  const parts: string[] = [];
  const params: unknown[] = [];
  const conditions = () => {
    let where = 'x."tenant_id" = ?';
    params.push(filter.tenantId);
    if (filter.resource) {
      where += ` AND x."resource" IN (${filter.resource.map(() => '?').join(', ')})`;
      params.push(...filter.resource);
    }
    if (filter.action) {
      where += ` AND x."action" IN (${filter.action.map(() => '?').join(', ')})`;
      params.push(...filter.action);
    }
    return where;
  };
  // The per-column rollups' condition: one dimension, and the filter's values of it.
  const byColumn = (column: RollupGroup) => {
    params.push(filter.tenantId, column);
    const values = column === 'action' ? filter.action : filter.resource;
    if (values) params.push(...values);
    return `x."tenant_id" = ? AND x."dimension" = ?${values ? ` AND x."value" IN (${values.map(() => '?').join(', ')})` : ''}`;
  };
  // Where each source's parts are read: with one column in use, the per-column rollups; with both, the
  // parts finer than a day come from the entries (over the (tenant, resource, time) index) and whole days
  // from the rollup by pairs.
  const readers: Array<{ sources: Source[]; from: string; time: string; sum: string; where: () => string; key: string }> = [
    { sources: single ? ['entries'] : ['entries', 'hourly'], from: '"audit_log"', time: 'created_at', sum: 'COUNT(*)', where: conditions, key: group ?? '' },
    ...(single
      ? [
          { sources: ['hourly'] as Source[], from: '"audit_activity_by"', time: 'start', sum: 'SUM(x."entries")', where: () => byColumn(single), key: group ? 'value' : '' },
          { sources: ['daily'] as Source[], from: '"audit_activity_daily_by"', time: 'day', sum: 'SUM(x."entries")', where: () => byColumn(single), key: group ? 'value' : '' },
        ]
      : [{ sources: ['daily'] as Source[], from: '"audit_activity_daily"', time: 'day', sum: 'SUM(x."entries")', where: conditions, key: group ?? '' }]),
  ];
  const ctes: string[] = [];
  for (const reader of readers) {
    const list = segments.flatMap((segment, id) => (reader.sources.includes(segment.source) ? [`(${id}, ${segment.start}, ${segment.end})`] : []));
    if (list.length === 0) continue;
    // A CTE with named columns: SQLite takes no column list on a subquery's alias.
    const s = `"s${ctes.length}"`;
    ctes.push(`${s}("k", "lo", "hi") AS (VALUES ${list.join(', ')})`);
    const key = reader.key ? `, x."${reader.key}"` : '';
    parts.push(
      `SELECT ${s}."k" AS "k", ${reader.sum} AS "n"${key ? `${key} AS "key"` : ''} FROM ${s} INNER JOIN ${reader.from} x ON x."${reader.time}" >= ${s}."lo" AND x."${reader.time}" < ${s}."hi" ` +
        `WHERE ${reader.where()} GROUP BY ${s}."k"${key}`,
    );
  }
  const rows = await store.read<{ k: number | string; n: number | string | null; key?: string | null }>({ sql: `WITH ${ctes.join(', ')} ${parts.join(' UNION ALL ')}`, params }, reads);
  const bySegment = segments.map(() => ({ count: 0, groups: new Map<string, number>() }));
  for (const row of rows) {
    const n = Number(row.n ?? 0);
    const target = bySegment[Number(row.k)]!;
    target.count += n;
    if (group) target.groups.set(row.key ?? '', (target.groups.get(row.key ?? '') ?? 0) + n);
  }
  terms.forEach((list, i) => {
    const result = results[i]!;
    for (const [id, sign] of list) {
      const part = bySegment[id]!;
      result.count += sign * part.count;
      if (result.groups) for (const [k, n] of part.groups) result.groups.set(k, (result.groups.get(k) ?? 0) + sign * n);
    }
    if (result.groups) for (const [k, n] of result.groups) if (n === 0) result.groups.delete(k);
  });
  return results;
}
