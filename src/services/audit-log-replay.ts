import type { SelectQueryBuilder } from 'typeorm';
import { AuditLog } from '../db/entities/audit-log.entity.js';
import type { ReadOptions } from '../db/store.js';
import { applyAuditLogFilter, type AuditLogFilter } from './audit-log-filter.js';
import { toEntries, toStatement } from './audit-log-query.js';
import type { LogPosition } from './cursor.js';
import type { ServiceDeps } from './deps.js';

type Deps = Pick<ServiceDeps, 'dataSource' | 'store'>;

/** The fields of an entry that may be large (up to MAX_JSON_BYTES each); every other column is small. */
export const LARGE_FIELDS = ['data', 'previousData', 'meta'] as const;
export type LargeField = (typeof LARGE_FIELDS)[number];

const LARGE_COLUMNS: Record<LargeField, string> = { data: 'data', previousData: 'previous_data', meta: 'meta' };
/** Every property but the large ones: bounded by their column sizes (a few KB together). */
const SMALL_PROPERTIES = [
  'id', 'tenantId', 'resource', 'resourceId', 'action', 'name', 'authorId', 'authorName', 'authorType',
  'ip', 'userAgent', 'redactedChanges', 'recordedBy', 'transactionId', 'idempotencyKey', 'createdAt',
] as const;
/** What the small columns of one entry are counted as against the byte budget. */
const SMALL_COLUMNS_BYTES = 4096;

export interface ReplayPageRequest {
  /** Exclusive: the page starts after this position. */
  after: LogPosition;
  /** Most entries in one page. */
  maxRows: number;
  /** Most stored bytes in one page; a page holds at least one entry, however large. */
  maxBytes: number;
  /** The large fields to read; the others stay undefined on the entries returned. */
  fields: ReadonlySet<LargeField>;
}

export interface ReplayPage {
  entries: AuditLog[];
  /** More entries may follow this page. */
  more: boolean;
}

/**
 * One page of a replay, oldest first, bounded by bytes as well as rows: first the positions and stored sizes
 * of the next `maxRows` entries (SQLite's `octet_length` reads a value's size from the record header, not the
 * value), then the entries that fit in `maxBytes`, with only the large fields the subscriber asked for.
 * Entries committed between the two statements come after the page's last position, so both see the same rows.
 */
export async function replayPage(deps: Deps, filter: AuditLogFilter, request: ReplayPageRequest, reads: ReadOptions = {}): Promise<ReplayPage> {
  const fields = LARGE_FIELDS.filter((field) => request.fields.has(field));
  const sizeOf = ['0', ...fields.map((field) => `COALESCE(octet_length(a.${LARGE_COLUMNS[field]}), 0)`)].join(' + ');
  const after = (qb: SelectQueryBuilder<AuditLog>) =>
    applyAuditLogFilter(qb, filter).andWhere('(a.createdAt, a.id) > (:afterAt, :afterId)', { afterAt: request.after.createdAt, afterId: request.after.id });
  const sizesQuery = after(deps.dataSource.createQueryBuilder(AuditLog, 'a'))
    .select('a.id', 'id')
    .addSelect('a.createdAt', 'createdAt')
    .addSelect(sizeOf, 'size')
    .orderBy('a.createdAt', 'ASC')
    .addOrderBy('a.id', 'ASC')
    .limit(request.maxRows);
  const sizes = await deps.store.read<{ id: number | string; createdAt: number | string; size: number | string }>(toStatement(sizesQuery), reads);
  if (sizes.length === 0) return { entries: [], more: false };
  let take = 0;
  let bytes = 0;
  for (const row of sizes) {
    bytes += SMALL_COLUMNS_BYTES + Number(row.size);
    if (take > 0 && bytes > request.maxBytes) break;
    take++;
  }
  const last = sizes[take - 1]!;
  const metadata = deps.dataSource.getMetadata(AuditLog);
  const [first, ...rest] = [...SMALL_PROPERTIES, ...fields].map((property) => [`a.${property}`, metadata.findColumnWithPropertyName(property)!.databaseName] as const);
  const entriesQuery = after(deps.dataSource.createQueryBuilder(AuditLog, 'a'))
    .andWhere('(a.createdAt, a.id) <= (:lastAt, :lastId)', { lastAt: Number(last.createdAt), lastId: Number(last.id) })
    .select(first![0], first![1])
    .orderBy('a.createdAt', 'ASC')
    .addOrderBy('a.id', 'ASC')
    .limit(take);
  for (const [selection, alias] of rest) entriesQuery.addSelect(selection, alias);
  const entries = toEntries(deps, await deps.store.read(toStatement(entriesQuery), reads));
  return { entries, more: take < sizes.length || sizes.length === request.maxRows };
}

/** The newest position in the tenant's log, or the start of time: where a stream without `after` begins. */
export async function newestPosition(deps: Deps, tenantId: string, reads: ReadOptions = {}): Promise<LogPosition> {
  const query = deps.dataSource
    .createQueryBuilder(AuditLog, 'a')
    .select('a.id', 'id')
    .addSelect('a.createdAt', 'createdAt')
    .where('a.tenantId = :tenantId', { tenantId })
    .orderBy('a.createdAt', 'DESC')
    .addOrderBy('a.id', 'DESC')
    .limit(1);
  const [row] = await deps.store.read<{ id: number | string; createdAt: number | string }>(toStatement(query), reads);
  return row ? { createdAt: Number(row.createdAt), id: Number(row.id) } : { createdAt: 0, id: 0 };
}
