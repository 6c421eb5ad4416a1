import type { DataSource, SelectQueryBuilder, ObjectLiteral } from 'typeorm';
import type { AuditLog } from '../db/entities/audit-log.entity.js';
import { statement } from '../db/sql.js';
import type { AuditStore, ReadOptions } from '../db/store.js';
import { SEARCH_STATE_TABLE, SEARCH_TABLE, searchIndexAvailable } from '../db/search-index.js';
import { badUserInput } from '../shared/errors.js';
import { postgresSearchExpression, SEARCH_SEPARATOR } from '../db/postgres/search.js';

/** The filter as clients send it (GraphQL `AuditLogFilter`). */
export interface AuditLogFilterInput {
  resource?: readonly string[] | null;
  resourceId?: string | null;
  action?: readonly string[] | null;
  authorId?: readonly (string | number)[] | null;
  transactionId?: string | null;
  from?: Date | null;
  to?: Date | null;
  search?: string | null;
}

/** A validated filter, always confined to one tenant. Every query, count, chart and live stream uses it. */
export interface AuditLogFilter {
  tenantId: string;
  resource?: string[];
  resourceId?: string;
  action?: string[];
  authorId?: string[];
  transactionId?: string;
  from?: number;
  to?: number;
  search?: string;
  /**
   * How a page finds search matches: `index` (the default) reads the trigram index; `scan` walks the
   * entries in list order and checks each, which is quicker for a page when matches are everywhere.
   * Set by `planSearch`; counts and charts always use the index.
   */
  searchPlan?: 'index' | 'scan';
}

const MAX_LIST = 100;
const MAX_SEARCH = 200;

/**
 * SQLite's FTS5 trigram tokenizer indexes every 3-character window, so a search of at least this many
 * characters is answered from the index; a shorter one scans the entries the other filters select.
 */
export const MIN_INDEXED_SEARCH = 3;

/** Whether `search` (as given) can be answered from the trigram index. */
export function searchUsesIndex(search: string): boolean {
  return [...search].length >= MIN_INDEXED_SEARCH;
}

function list(values: readonly (string | number)[] | null | undefined, field: string): string[] | undefined {
  if (values == null) return undefined;
  if (values.length === 0) throw badUserInput(`filter.${field} must not be an empty list (leave it out to match all)`, `filter.${field}`);
  if (values.length > MAX_LIST) throw badUserInput(`filter.${field} takes at most ${MAX_LIST} values`, `filter.${field}`);
  return [...new Set(values.map(String))];
}

export function parseAuditLogFilter(input: AuditLogFilterInput | null | undefined, tenantId: string): AuditLogFilter {
  const filter: AuditLogFilter = { tenantId };
  if (!input) return filter;
  filter.resource = list(input.resource, 'resource');
  filter.action = list(input.action, 'action');
  filter.authorId = list(input.authorId, 'authorId');
  if (input.resourceId != null) filter.resourceId = input.resourceId;
  if (input.transactionId != null) filter.transactionId = input.transactionId;
  if (input.from != null) filter.from = input.from.getTime();
  if (input.to != null) filter.to = input.to.getTime();
  if (filter.from !== undefined && filter.to !== undefined && filter.from > filter.to) {
    throw badUserInput('filter.from must not be after filter.to', 'filter.from');
  }
  if (input.search != null) {
    if (input.search.length > MAX_SEARCH) throw badUserInput(`filter.search takes at most ${MAX_SEARCH} characters`, 'filter.search');
    // NUL and other control characters match nothing a person typed, and SQL and JavaScript disagree on
    // them (SQLite stops a pattern at NUL): refused here, for queries and live filters alike.
    if (CONTROL_CHARACTER.test(input.search) || UNPAIRED_SURROGATE.test(input.search)) {
      throw badUserInput('filter.search must not contain control characters or unpaired surrogates', 'filter.search');
    }
    if (input.search.trim() !== '') filter.search = asciiLower(input.search);
  }
  return filter;
}

const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;
const UNPAIRED_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** SQLite's `lower()` folds ASCII only; the in-memory matcher folds the same way so both agree exactly. */
function asciiLower(value: string): string {
  return value.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

function likePattern(search: string): string {
  return `%${search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

const SEARCHED = ['name', 'resource', 'resourceId', 'action', 'authorName'] as const;

/** An FTS5 phrase matching `search` as it is: inside double quotes every character is literal ("" is a quote). */
function phrase(search: string): string {
  return `"${search.replace(/"/g, '""')}"`;
}

function readsIndex(dataSource: DataSource, filter: AuditLogFilter): boolean {
  return filter.search !== undefined && filter.searchPlan !== 'scan' && searchUsesIndex(filter.search) && searchIndexAvailable(dataSource);
}

/** Past this many indexed matches a search counts as common: a page may find its entries sooner by walking the list. */
const COMMON_SEARCH = 2000;
/** How far a walk down the list may go for a page of a common search before the index is the better way. */
const LONGEST_WALK = 20_000;

/**
 * Chooses how a page of a search finds its entries. A rare needle: from the index (a few ms, where a walk
 * through 1M entries took ~1.5 s). A common one (measured: "upd" in 200k of 1M entries): reading every
 * match from the index to sort them took ~1 s, while walking the list newest first meets 50 matches
 * almost at once — when the matches are recent. Matches that are many but all old (one record's burst
 * months ago) would make that walk pass millions of entries: the walk is taken only when the 51st newest
 * match (by id, which follows commit order) is within LONGEST_WALK entries of the newest one. Asking the
 * index for up to COMMON_SEARCH matches and for the 51 newest costs a few ms. While the indexer is far
 * behind (just after the migration) the unindexed tail is most of the log, and the list is walked.
 */
export async function planSearch(deps: { dataSource: DataSource; store: AuditStore }, filter: AuditLogFilter, reads: ReadOptions = {}): Promise<AuditLogFilter> {
  if (filter.searchPlan !== undefined || !readsIndex(deps.dataSource, filter)) return filter;
  const [row] = await deps.store.read<{ matches: number; nth: number | null; top: number | null; tail: number | null }>(
    statement(
      `SELECT (SELECT COUNT(*) FROM (SELECT "rowid" FROM "${SEARCH_TABLE}" WHERE "${SEARCH_TABLE}" MATCH ? LIMIT ${COMMON_SEARCH})) AS "matches", ` +
        `(SELECT MIN("rowid") FROM (SELECT "rowid" FROM "${SEARCH_TABLE}" WHERE "${SEARCH_TABLE}" MATCH ? ORDER BY "rowid" DESC LIMIT 51)) AS "nth", ` +
        `(SELECT MAX("id") FROM "audit_log") AS "top", ` +
        `(SELECT MAX("id") FROM "audit_log") - (SELECT "indexed_through" FROM "${SEARCH_STATE_TABLE}") AS "tail"`,
      [phrase(filter.search!), phrase(filter.search!)],
    ),
    reads,
  );
  const tail = Number(row?.tail ?? 0);
  const common = Number(row?.matches ?? 0) >= COMMON_SEARCH && Number(row?.top ?? 0) - Number(row?.nth ?? 0) <= LONGEST_WALK;
  return { ...filter, searchPlan: common || tail >= COMMON_SEARCH ? 'scan' : 'index' };
}

/** Adds the filter's conditions to a query over `AuditLog` aliased `alias`. */
export function applyAuditLogFilter<T extends ObjectLiteral>(qb: SelectQueryBuilder<T>, filter: AuditLogFilter, alias = 'a'): SelectQueryBuilder<T> {
  // With the search index on SQLite, the candidates it lists drive the query: the unary + keeps the tenant
  // term (the first column of every other index) from offering SQLite a walk of the tenant's entries, which
  // it takes on a file without statistics (ANALYZE) and which passes every entry.
  const byCandidates = filter.search !== undefined && qb.connection.options.type !== 'postgres' && readsIndex(qb.connection, filter);
  qb.andWhere(`${byCandidates ? '+ ' : ''}${alias}.tenantId = :f_tenant`, { f_tenant: filter.tenantId });
  if (filter.resource) qb.andWhere(`${alias}.resource IN (:...f_resource)`, { f_resource: filter.resource });
  if (filter.resourceId !== undefined) qb.andWhere(`${alias}.resourceId = :f_resourceId`, { f_resourceId: filter.resourceId });
  if (filter.action) qb.andWhere(`${alias}.action IN (:...f_action)`, { f_action: filter.action });
  if (filter.authorId) qb.andWhere(`${alias}.authorId IN (:...f_author)`, { f_author: filter.authorId });
  if (filter.transactionId !== undefined) qb.andWhere(`${alias}.transactionId = :f_tx`, { f_tx: filter.transactionId });
  if (filter.from !== undefined) qb.andWhere(`${alias}.createdAt >= :f_from`, { f_from: filter.from });
  if (filter.to !== undefined) qb.andWhere(`${alias}.createdAt < :f_to`, { f_to: filter.to });
  if (filter.search !== undefined) {
    if (qb.connection.options.type === 'postgres') {
      // One expression over the searched columns, which the pg_trgm index covers (db/postgres/search.ts),
      // kept in the writer's transaction: no unindexed tail. A needle with the separator in it could match
      // across two columns: it matches nothing instead.
      if (filter.search.includes(SEARCH_SEPARATOR)) qb.andWhere('1 = 0');
      else qb.andWhere(`${postgresSearchExpression((column) => `"${alias}"."${column}"`)} LIKE :f_search ESCAPE '\\'`, { f_search: likePattern(filter.search) });
    } else {
      if (readsIndex(qb.connection, filter)) {
        // Candidates: the index's matches among indexed entries, and every entry written since (the small
        // tail the indexer has not reached). Each candidate is then checked exactly, below: the index folds
        // case beyond ASCII, so it finds a superset of what the exact test accepts.
        // One IN list rather than `IN (…) OR id > …`: with the OR, SQLite walked the whole time index and
        // tested each entry against the list (measured: every search a full pass); with the list, it looks
        // up each candidate by id and sorts only them.
        qb.andWhere(
          `${alias}.id IN (SELECT "rowid" FROM "${SEARCH_TABLE}" WHERE "${SEARCH_TABLE}" MATCH :f_match UNION ALL SELECT "id" FROM "audit_log" WHERE "id" > (SELECT "indexed_through" FROM "${SEARCH_STATE_TABLE}"))`,
          { f_match: phrase(filter.search) },
        );
      }
      const ors = SEARCHED.map((field) => `LOWER(${alias}.${field}) LIKE :f_search ESCAPE '\\'`).join(' OR ');
      qb.andWhere(`(${ors})`, { f_search: likePattern(filter.search) });
    }
  }
  return qb;
}

/** The same filter evaluated in memory, for live subscribers: must agree with `applyAuditLogFilter` row for row. */
export function matchesAuditLogFilter(entry: AuditLog, filter: AuditLogFilter): boolean {
  if (entry.tenantId !== filter.tenantId) return false;
  if (filter.resource && !filter.resource.includes(entry.resource)) return false;
  if (filter.resourceId !== undefined && entry.resourceId !== filter.resourceId) return false;
  if (filter.action && !filter.action.includes(entry.action)) return false;
  if (filter.authorId && (entry.authorId === null || !filter.authorId.includes(entry.authorId))) return false;
  if (filter.transactionId !== undefined && entry.transactionId !== filter.transactionId) return false;
  const at = entry.createdAt.getTime();
  if (filter.from !== undefined && at < filter.from) return false;
  if (filter.to !== undefined && at >= filter.to) return false;
  if (filter.search !== undefined) {
    const needle = filter.search;
    return SEARCHED.some((field) => {
      const value = entry[field];
      return value != null && asciiLower(value).includes(needle);
    });
  }
  return true;
}
