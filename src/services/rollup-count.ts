import type { AuditStore, ReadOptions } from '../db/store.js';
import type { AuditLogFilter } from './audit-log-filter.js';

const QUARTER = 900_000;
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
 * `created_at - created_at % unit`, which is the floor only for times at or after 1970: anything before
 * that is counted from the entries.
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
    if (start < 0) {
      add('entries', start, Math.min(end, 0));
      start = 0;
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

const TABLE: Record<Exclude<Source, 'entries'>, { table: string; column: string }> = {
  hourly: { table: 'audit_activity_hourly', column: 'hour' },
  daily: { table: 'audit_activity_daily', column: 'day' },
};

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
  const { segments, terms } = planRollupRanges(ranges, single === 'action' ? QUARTER : HOUR);
  const results: RangeCount[] = ranges.map(() => ({ count: 0, groups: group ? new Map() : undefined }));
  if (segments.length === 0) return results;
  const parts: string[] = [];
  const params: unknown[] = [];
  const key = group ? `, x."${group}" AS "key"` : '';
  const groupKey = group ? `, x."${group}"` : '';
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
  const values = (source: Source) =>
    segments
      .map((s, id) => [s, id] as const)
      .filter(([s]) => s.source === source)
      .map(([s, id]) => `(${id}, ${s.start}, ${s.end})`);
  const ctes: string[] = [];
  for (const source of ['entries', 'hourly', 'daily'] as const) {
    const list = values(source);
    if (list.length === 0) continue;
    // A CTE with named columns: SQLite takes no column list on a subquery's alias.
    const s = `"s${ctes.length}"`;
    ctes.push(`${s}("k", "lo", "hi") AS (VALUES ${list.join(', ')})`);
    if (source === 'entries') {
      parts.push(
        `SELECT ${s}."k" AS "k", COUNT(*) AS "n"${key} FROM ${s} INNER JOIN "audit_log" x ON x."created_at" >= ${s}."lo" AND x."created_at" < ${s}."hi" ` +
          `WHERE ${conditions()} GROUP BY ${s}."k"${groupKey}`,
      );
    } else if (source === 'hourly' && single) {
      // One row per value of the one column used, instead of one per (action, resource) pair.
      params.push(filter.tenantId, single);
      const values = single === 'action' ? filter.action : filter.resource;
      if (values) params.push(...values);
      parts.push(
        `SELECT ${s}."k" AS "k", SUM(x."entries") AS "n"${group ? ', x."value" AS "key"' : ''} FROM ${s} INNER JOIN "audit_activity_by" x ON x."start" >= ${s}."lo" AND x."start" < ${s}."hi" ` +
          `WHERE x."tenant_id" = ? AND x."dimension" = ?${values ? ` AND x."value" IN (${values.map(() => '?').join(', ')})` : ''} GROUP BY ${s}."k"${group ? ', x."value"' : ''}`,
      );
    } else {
      const { table, column } = TABLE[source];
      parts.push(
        `SELECT ${s}."k" AS "k", SUM(x."entries") AS "n"${key} FROM ${s} INNER JOIN "${table}" x ON x."${column}" >= ${s}."lo" AND x."${column}" < ${s}."hi" ` +
          `WHERE ${conditions()} GROUP BY ${s}."k"${groupKey}`,
      );
    }
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
