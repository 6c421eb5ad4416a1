import type { Limits } from '../config.js';
import type { AuditLog } from '../db/entities/audit-log.entity.js';
import { encodeCursor, positionOf } from './cursor.js';
import { listAuditLogs, type AuditLogOrder, type PageRequest } from './audit-log-query.js';
import { planSearch, type AuditLogFilter } from './audit-log-filter.js';
import type { ReadOptions } from '../db/store.js';
import type { ServiceDeps } from './deps.js';

/** Where a list was cut to stay within the budget, and the cursor to continue from. */
export interface ResponseCut {
  path: ReadonlyArray<string | number>;
  returned: number;
  after: string | null;
}

/**
 * The bytes of entries one response may carry (MAX_RESPONSE_BYTES), shared by every list of the operation
 * (aliases too). Lists read in chunks sized so that the worst case still fits what is left, so neither the
 * response nor what is loaded to build it can grow past the budget by more than one entry.
 */
export class ResponseBudget {
  private used = 0;
  readonly cuts: ResponseCut[] = [];

  constructor(
    readonly limit: number,
    /** The largest an entry can be, by the write limits (its JSON values at their largest, and its texts). */
    readonly largestEntry: number,
  ) {}

  static forLimits(limits: Pick<Limits, 'maxResponseBytes' | 'maxJsonBytes'>): ResponseBudget {
    return new ResponseBudget(limits.maxResponseBytes, 3 * limits.maxJsonBytes + 4096);
  }

  get remaining(): number {
    return Math.max(0, this.limit - this.used);
  }

  /** Takes `bytes`; false (taking nothing) when they do not fit. */
  take(bytes: number): boolean {
    if (this.used + bytes > this.limit) return false;
    this.used += bytes;
    return true;
  }
}

/** The fields of an entry that weigh something in a response. */
export type HeavyField = 'data' | 'previousData' | 'changes' | 'meta';
export const HEAVY_FIELDS: readonly HeavyField[] = ['data', 'previousData', 'changes', 'meta'];

/**
 * What an entry adds to a response, counting the heavy fields selected (`changes` repeats what changed of
 * data and previousData) and its texts. An estimate made before serialising, erring on the large side.
 */
export function entryBytes(entry: AuditLog, selected: ReadonlySet<HeavyField> = new Set(HEAVY_FIELDS)): number {
  const json = (value: unknown) => (value == null ? 0 : JSON.stringify(value).length);
  let bytes = 256;
  for (const text of [entry.resource, entry.resourceId, entry.action, entry.name, entry.authorId, entry.authorName, entry.authorType, entry.ip, entry.userAgent, entry.transactionId, entry.recordedBy]) {
    bytes += text?.length ?? 0;
  }
  const data = selected.has('data') || selected.has('changes') ? json(entry.data) : 0;
  const previous = selected.has('previousData') || selected.has('changes') ? json(entry.previousData) : 0;
  if (selected.has('data')) bytes += data;
  if (selected.has('previousData')) bytes += previous;
  if (selected.has('changes')) bytes += data + previous;
  if (selected.has('meta')) bytes += json(entry.meta);
  return bytes;
}

/**
 * One page of `listAuditLogs`, read in chunks and cut where the response budget runs out (at least one
 * entry is returned, so paging always moves on). `cut` says whether entries were left out.
 */
export async function listWithinBudget(
  deps: Pick<ServiceDeps, 'dataSource' | 'store'>,
  given: AuditLogFilter,
  order: AuditLogOrder,
  page: PageRequest,
  budget: ResponseBudget,
  selected?: ReadonlySet<HeavyField>,
  reads: ReadOptions = {},
): Promise<{ entries: AuditLog[]; cut: boolean }> {
  // Planned once for all chunks (the plan is carried in the filter).
  const filter = await planSearch(deps, given, reads);
  const entries: AuditLog[] = [];
  let { after, before } = page;
  while (entries.length < page.limit) {
    const wanted = page.limit - entries.length;
    const size = Math.max(1, Math.min(wanted, Math.floor(budget.remaining / budget.largestEntry)));
    const chunk = await listAuditLogs(deps, filter, order, { after, before, limit: size, inverted: page.inverted }, reads);
    for (const entry of chunk) {
      if (!budget.take(entryBytes(entry, selected)) && entries.length > 0) return { entries, cut: true };
      entries.push(entry);
    }
    if (chunk.length < size) break;
    // Rows come in the direction of travel: forward from `after`, or back from `before` when inverted.
    const last = positionOf(chunk[chunk.length - 1]!);
    if (page.inverted) before = last;
    else after = last;
  }
  return { entries, cut: false };
}

export function cursorOf(entry: AuditLog | undefined): string | null {
  return entry ? encodeCursor(positionOf(entry)) : null;
}
