import type { DataSource, EntityManager, ObjectLiteral } from 'typeorm';
import { AuditLog } from '../db/entities/audit-log.entity.js';
import { DEFAULT_TENANT } from '../shared/tenant.js';
import { currentAuditContext, type AuditActor } from './context.js';
import type { JsonValue } from '../shared/json.js';
import { publishAfterCommit, transactionIdFor } from './publish.subscriber.js';

/** What a caller knows about an entry; the writer fills in time, transaction and context. */
export interface AuditEntryDraft {
  resource: string;
  action: string;
  resourceId?: string | null;
  name?: string | null;
  author?: AuditActor | null;
  data?: JsonValue | null;
  previousData?: JsonValue | null;
  meta?: JsonValue | null;
  ip?: string | null;
  userAgent?: string | null;
  tenantId?: string;
  idempotencyKey?: string | null;
  /** Redacted fields whose value changed (both sides are stored masked). */
  redactedChanges?: string[] | null;
  /** The principal that wrote the entry in someone else's name. */
  recordedBy?: string | null;
  /** Overrides the id shared by the transaction's entries (group commit gives each entry its own). */
  transactionId?: string;
}

const lastCreatedAt = new WeakMap<DataSource, number>();

/**
 * createdAt never goes backwards (a clock step back would otherwise break the (createdAt, id) order that
 * cursors and the resumable stream rely on).
 */
function nextTimestamp(dataSource: DataSource): number {
  const now = Math.max(Date.now(), lastCreatedAt.get(dataSource) ?? 0);
  lastCreatedAt.set(dataSource, now);
  return now;
}

/**
 * Values that come from request headers (or a peer address) are cut to their column's size, which the
 * entity's metadata gives: SQLite would store a 15,000-character User-Agent as it is, PostgreSQL would fail
 * the whole write (and with it the app's own change).
 */
const HEADER_PROPERTIES = ['ip', 'userAgent'] as const;

const columnLengths = new WeakMap<DataSource, Partial<Record<(typeof HEADER_PROPERTIES)[number], number>>>();

function fitToColumn(connection: DataSource, property: (typeof HEADER_PROPERTIES)[number], value: string | null): string | null {
  if (value === null) return null;
  let lengths = columnLengths.get(connection);
  if (!lengths) {
    const metadata = connection.getMetadata(AuditLog);
    lengths = Object.fromEntries(HEADER_PROPERTIES.map((name) => [name, Number(metadata.findColumnWithPropertyName(name)?.length) || undefined]));
    columnLengths.set(connection, lengths);
  }
  const length = lengths[property];
  if (length === undefined || value.length <= length) return value;
  // Cut by code points (what a varchar(n) counts), so a surrogate pair is never split in half.
  return Array.from(value).slice(0, length).join('');
}

/**
 * Writes entries through `manager`, so they commit or roll back with the caller's transaction, and
 * hands them to the after-commit publisher.
 */
export async function writeAuditEntries(manager: EntityManager, drafts: AuditEntryDraft[]): Promise<AuditLog[]> {
  if (drafts.length === 0) return [];
  const context = currentAuditContext();
  const runner = manager.queryRunner;
  const transactionId = transactionIdFor(runner);
  const createdAt = new Date(nextTimestamp(manager.connection));
  const rows = drafts.map((draft) => {
    const author = draft.author !== undefined ? draft.author : (context?.author ?? null);
    return Object.assign(new AuditLog(), {
      tenantId: draft.tenantId ?? context?.tenantId ?? DEFAULT_TENANT,
      resource: draft.resource,
      resourceId: draft.resourceId ?? null,
      action: draft.action,
      name: draft.name ?? null,
      authorId: author?.id ?? null,
      authorName: author?.name ?? null,
      authorType: author?.type ?? null,
      data: draft.data ?? null,
      previousData: draft.previousData ?? null,
      meta: draft.meta !== undefined ? draft.meta : (context?.meta ?? null),
      ip: fitToColumn(manager.connection, 'ip', draft.ip !== undefined ? draft.ip : (context?.ip ?? null)),
      userAgent: fitToColumn(manager.connection, 'userAgent', draft.userAgent !== undefined ? draft.userAgent : (context?.userAgent ?? null)),
      transactionId: draft.transactionId ?? transactionId,
      idempotencyKey: draft.idempotencyKey ?? null,
      redactedChanges: draft.redactedChanges?.length ? draft.redactedChanges : null,
      recordedBy: draft.recordedBy ?? null,
      createdAt,
    });
  });
  await insertRows(manager, rows);
  publishAfterCommit(manager.connection, runner, rows);
  return rows;
}

/** Columns in insert order, with how each is bound. */
const COLUMNS: Array<[string, (row: AuditLog) => unknown]> = [
  ['tenant_id', (r) => r.tenantId],
  ['resource', (r) => r.resource],
  ['resource_id', (r) => r.resourceId],
  ['action', (r) => r.action],
  ['name', (r) => r.name],
  ['author_id', (r) => r.authorId],
  ['author_name', (r) => r.authorName],
  ['author_type', (r) => r.authorType],
  ['data', (r) => json(r.data)],
  ['previous_data', (r) => json(r.previousData)],
  ['meta', (r) => json(r.meta)],
  ['ip', (r) => r.ip],
  ['user_agent', (r) => r.userAgent],
  ['transaction_id', (r) => r.transactionId],
  ['idempotency_key', (r) => r.idempotencyKey],
  ['redacted_changes', (r) => json(r.redactedChanges)],
  ['recorded_by', (r) => r.recordedBy],
  ['created_at', (r) => r.createdAt.getTime()],
];
const json = (value: unknown) => (value === null || value === undefined ? null : JSON.stringify(value));
const ROWS_PER_STATEMENT = 500;
const SQLITE = new Set(['sqlite', 'better-sqlite3']);

/**
 * One plain multi-row INSERT per 500 entries. Audit rows ride on every audited save, so this path is hot:
 * TypeORM's insert builder (events, entity merging) cost more than the insert itself (measured: audited
 * saves at 0.2–0.5× the unaudited rate with it). SQLite hands back the last id; the ids of one statement are
 * consecutive. PostgreSQL returns them.
 */
async function insertRows(manager: EntityManager, rows: AuditLog[]): Promise<void> {
  const type = manager.connection.options.type;
  if (!SQLITE.has(type) && type !== 'postgres') {
    // Cast: TypeORM's deep-partial type recurses without end on the recursive JsonValue type.
    await manager.createQueryBuilder().insert().into(AuditLog).values(rows as ObjectLiteral[]).execute();
    return;
  }
  const columnList = COLUMNS.map(([name]) => `"${name}"`).join(', ');
  for (let start = 0; start < rows.length; start += ROWS_PER_STATEMENT) {
    const chunk = rows.slice(start, start + ROWS_PER_STATEMENT);
    const params: unknown[] = [];
    const tuples = chunk.map((row) => {
      const marks = COLUMNS.map(([, value]) => {
        params.push(value(row));
        return type === 'postgres' ? `$${params.length}` : '?';
      });
      return `(${marks.join(', ')})`;
    });
    const sql = `INSERT INTO "audit_log" (${columnList}) VALUES ${tuples.join(', ')}`;
    if (type === 'postgres') {
      const returned = (await manager.query(`${sql} RETURNING "id"`, params)) as Array<{ id: number | string }>;
      returned.forEach((r, i) => (chunk[i]!.id = Number(r.id)));
    } else {
      const lastId = Number(await manager.query(sql, params));
      chunk.forEach((row, i) => (row.id = lastId - chunk.length + 1 + i));
    }
  }
}
