import { DateTime } from 'luxon';
import { bucketCountBound, DEFAULT_SPAN, type ActivityGroupBy, type ActivityInterval } from '../services/activity-chart.js';
import { searchUsesIndex } from '../services/audit-log-filter.js';

/**
 * The cost model: what an operation may cost is MAX_QUERY_COST points (default 1,000), computed from the
 * operation and its arguments before anything runs (src/server/cost-limit.ts). Fields declare their cost
 * beside their definition (`complexity` of @pothos/plugin-complexity); every alias counts again.
 *
 * Weights follow what the database does, measured at 1M entries: a keyset page is an index range (< 5 ms),
 * a count visits every matching entry (tens of ms, more with a search), a chart reads its rollup or, grouped
 * by author or with a search, every entry of its range, per bucket.
 */
export const COST = {
  /** A field that reads one thing: `auditLog(id)`, `logEvent`, `renameLog`, the API key operations. */
  one: 1,
  /** `logEvents`: one point, and one more per this many entries (a full list of 1,000: 101). */
  entriesPerPoint: 10,
  /** One `auditLogs` page (times the search factor). */
  page: 1,
  /** `totalCount`: counts every matching entry (times the search factor of its `auditLogs`). */
  count: 10,
  /** Factor for a search answered from the trigram index (3 characters or more). */
  search: 10,
  /** Factor for a 1–2 character search, which scans the entries the other filters select. */
  shortSearch: 40,
  /** A chart costs (buckets × groupBy × search factor) / this, at least 1. */
  bucketsPerPoint: 10,
  /** Factor for a chart grouped by action or resource (the hourly rollup has them), or by author (every entry is read). */
  groupBy: { ACTION: 2, RESOURCE: 2, AUTHOR: 5 } satisfies Record<ActivityGroupBy, number>,
} as const;

/** `logEvents` of `entries` entries. */
export function logEventsCost(entries: number): number {
  return COST.one + Math.ceil(entries / COST.entriesPerPoint);
}

interface FilterArgs {
  search?: string | null;
  from?: Date | null;
  to?: Date | null;
}

/** 1 without a search; the search factor with one. */
export function searchFactor(filter: FilterArgs | null | undefined): number {
  const search = filter?.search;
  if (search == null || search.trim() === '') return 1;
  return searchUsesIndex(search) ? COST.search : COST.shortSearch;
}

/** `auditLogs`: a page, and a multiplier for what is selected below it (`totalCount`). */
export function auditLogsCost(args: { filter?: FilterArgs | null }) {
  const factor = searchFactor(args.filter);
  return { field: COST.page * factor, multiplier: factor };
}

/** `activityChart`: bucket count (range ÷ interval, as the chart will build it) × groupBy × search. */
export function activityChartCost(
  args: { filter?: FilterArgs | null; interval?: ActivityInterval | null; groupBy?: ActivityGroupBy | null },
  maxBuckets: number,
): number {
  const interval = args.interval ?? 'DAY';
  const to = args.filter?.to?.getTime() ?? Date.now();
  const from = args.filter?.from?.getTime() ?? DateTime.fromMillis(to, { zone: 'UTC' }).minus(DEFAULT_SPAN[interval]).toMillis();
  // Past maxBuckets the chart refuses with its own, more specific error.
  const buckets = Math.min(Math.max(bucketCountBound(from, to, interval), 1), maxBuckets);
  const group = args.groupBy ? COST.groupBy[args.groupBy] : 1;
  return Math.max(1, Math.ceil((buckets * group * searchFactor(args.filter)) / COST.bucketsPerPoint));
}
