import type { DataSource } from 'typeorm';
import { AuditLog } from '../db/entities/audit-log.entity.js';
import { read } from '../db/transaction.js';
import { applyAuditLogFilter, type AuditLogFilter } from './audit-log-filter.js';
import type { LogPosition } from './cursor.js';

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
export async function replayPage(dataSource: DataSource, filter: AuditLogFilter, request: ReplayPageRequest): Promise<ReplayPage> {
  const fields = LARGE_FIELDS.filter((field) => request.fields.has(field));
  const sizeOf = ['0', ...fields.map((field) => `COALESCE(octet_length(a.${LARGE_COLUMNS[field]}), 0)`)].join(' + ');
  return read(dataSource, async (manager) => {
    const after = (qb: ReturnType<typeof manager.createQueryBuilder<AuditLog>>) =>
      applyAuditLogFilter(qb, filter).andWhere('(a.createdAt, a.id) > (:afterAt, :afterId)', { afterAt: request.after.createdAt, afterId: request.after.id });
    const sizes = await after(manager.createQueryBuilder(AuditLog, 'a'))
      .select('a.id', 'id')
      .addSelect('a.createdAt', 'createdAt')
      .addSelect(sizeOf, 'size')
      .orderBy('a.createdAt', 'ASC')
      .addOrderBy('a.id', 'ASC')
      .limit(request.maxRows)
      .getRawMany<{ id: number | string; createdAt: number | string; size: number | string }>();
    if (sizes.length === 0) return { entries: [], more: false };
    let take = 0;
    let bytes = 0;
    for (const row of sizes) {
      bytes += SMALL_COLUMNS_BYTES + Number(row.size);
      if (take > 0 && bytes > request.maxBytes) break;
      take++;
    }
    const last = sizes[take - 1]!;
    const entries = await after(manager.createQueryBuilder(AuditLog, 'a'))
      .andWhere('(a.createdAt, a.id) <= (:lastAt, :lastId)', { lastAt: Number(last.createdAt), lastId: Number(last.id) })
      .select([...SMALL_PROPERTIES, ...fields].map((property) => `a.${property}`))
      .orderBy('a.createdAt', 'ASC')
      .addOrderBy('a.id', 'ASC')
      .limit(take)
      .getMany();
    return { entries, more: take < sizes.length || sizes.length === request.maxRows };
  });
}

/** The newest position in the tenant's log, or the start of time: where a stream without `after` begins. */
export async function newestPosition(dataSource: DataSource, tenantId: string): Promise<LogPosition> {
  const row = await read(dataSource, (manager) =>
    manager
      .createQueryBuilder(AuditLog, 'a')
      .select('a.id', 'id')
      .addSelect('a.createdAt', 'createdAt')
      .where('a.tenantId = :tenantId', { tenantId })
      .orderBy('a.createdAt', 'DESC')
      .addOrderBy('a.id', 'DESC')
      .limit(1)
      .getRawOne<{ id: number | string; createdAt: number | string }>(),
  );
  return row ? { createdAt: Number(row.createdAt), id: Number(row.id) } : { createdAt: 0, id: 0 };
}
