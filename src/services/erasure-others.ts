/**
 * Erasure of a person from entries others wrote (README, "Erasure"): reads of the log whose filter named
 * them (by author id, or by the id of one of their records), and entries about their own records (`resource` + `resourceId`, such as their user
 * record). Both are hashed with version 2, so the values inside their JSON are erased on their own and the
 * author's values stay, still verifiable. Version-1 entries (one salt for every value) are left as they are.
 */
import type { AuditStore } from '../db/store-types.js';
import { exec, statement, type Work } from '../db/sql.js';
import { HASH_VERSION_GROUPED, isContentPointer, type ChainRow } from '../shared/chain/canonical.js';
import { eraseContent, ERASED_MARKER, type ErasedColumns } from '../shared/chain/erase.js';
import { CHAIN_COLUMNS, chainRowFromDb, type RawChainRow } from '../shared/chain/rows.js';
import type { JsonValue } from '../shared/json.js';

/** A record an entry is about. */
export interface RecordRef {
  resource: string;
  resourceId: string;
}

/** Whom to erase from others' entries. */
export interface OthersTarget {
  authorId: string;
  /** The person's own records: the values inside entries about them are erased, whoever wrote them. */
  records: readonly RecordRef[];
  /** The pseudonym of any author id in the tenant (ids filtered by become theirs). */
  pseudonymFor(id: string): string;
}

/** Which kind of others' entry an erasure reached. */
export type OthersKind = 'mention' | 'record';

interface RecordedFilter {
  authorId?: unknown;
  resource?: unknown;
  resourceId?: unknown;
}

/**
 * Whether a recorded filter (`meta.filter`, `meta` as parsed JSON) names the person: a read of the log that
 * looked for their entries (`authorId`, one id or a list) or for the entries about one of their records
 * (`resourceId`, with no `resource` or one that includes the record's).
 */
export function filterNames(meta: unknown, target: Pick<OthersTarget, 'authorId' | 'records'>): boolean {
  const filter = (meta as { filter?: RecordedFilter } | null)?.filter;
  if (filter === undefined || filter === null) return false;
  const { authorId, resource, resourceId } = filter;
  if (authorId === target.authorId || (Array.isArray(authorId) && authorId.includes(target.authorId))) return true;
  if (typeof resourceId !== 'string') return false;
  return target.records.some(
    (record) => record.resourceId === resourceId && (resource === undefined || resource === null || (Array.isArray(resource) && (resource.length === 0 || resource.includes(record.resource)))),
  );
}

const parse = (text: string | null): unknown => {
  if (text === null) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
};

const recordKey = (resource: unknown, resourceId: unknown) => `${String(resource)}\u0000${String(resourceId)}`;

/**
 * A recorded filter's erased values: the ids filtered by become their pseudonyms (the read still shows
 * whose entries it looked at, to those who hold the key); the record id and the searched text ERASED_MARKER.
 */
function filterReplacement(pseudonymFor: (id: string) => string): (pointer: string, value: JsonValue) => JsonValue {
  return (pointer, value) => {
    if (pointer !== '/meta/filter/authorId') return ERASED_MARKER;
    if (typeof value === 'string') return pseudonymFor(value);
    if (Array.isArray(value)) return value.map((id) => (typeof id === 'string' ? pseudonymFor(id) : ERASED_MARKER));
    return ERASED_MARKER;
  };
}

/** What an erasure of the target does to one version-2 entry (or null: nothing of it concerns the target). */
export type OthersEraser = (row: ChainRow) => { kind: OthersKind; columns: ErasedColumns } | null;

export function othersEraser(target: OthersTarget): OthersEraser {
  const records = new Set(target.records.map((record) => recordKey(record.resource, record.resourceId)));
  const replaceFilter = filterReplacement(target.pseudonymFor);
  return (row) => {
    if (row.hashVersion !== HASH_VERSION_GROUPED) return null;
    if (records.has(recordKey(row.resource, row.resourceId))) {
      const columns = eraseContent(row, () => ERASED_MARKER);
      return columns && { kind: 'record', columns };
    }
    if (filterNames(parse(row.meta), target)) {
      const columns = eraseContent(row, replaceFilter);
      return columns && { kind: 'mention', columns };
    }
    return null;
  };
}

/** Whether an export line (an archived entry) is one the eraser may change, without computing it. */
export function concernsOthers(entry: Record<string, unknown>, target: OthersTarget): boolean {
  if (entry.hashVersion !== HASH_VERSION_GROUPED) return false;
  return target.records.some((record) => record.resource === entry.resource && record.resourceId === entry.resourceId) || filterNames(entry.meta, target);
}

/** The ids to look at, and the version-1 entries about the records that cannot be erased apart from their authors. */
export interface OthersFound {
  ids: number[];
  left: number;
}

/**
 * The tenant's entries others wrote that may name the target, found on the read path (scans that never
 * hold the writer): reads of the log whose stored filter holds the author id or a record's id (a LIKE narrows
 * them, every character that JSON might escape or LIKE read as a wildcard left to `%`; the parsed filter
 * decides), and
 * entries about the records (their index). Entries the target authored are left to the author's pass.
 */
export async function findOthers(store: AuditStore, tenantId: string, target: OthersTarget): Promise<OthersFound> {
  const ids = new Set<number>();
  let left = 0;
  // One scan per id the filter may hold: the author's, and each record's.
  for (const needle of new Set([target.authorId, ...target.records.map((record) => record.resourceId)])) {
    const reads = store.stream<{ id: number | string; author_id: string | null; meta: string | null }>(
      statement(
        `SELECT "id", "author_id", "meta" FROM "audit_log" WHERE "tenant_id" = ? AND "resource" IN ('audit_log', 'api_key') AND "hash_version" = ? AND "meta" LIKE ? ORDER BY "id"`,
        [tenantId, HASH_VERSION_GROUPED, `%${needle.replace(/[^A-Za-z0-9.@:-]+/g, '%')}%`],
      ),
      1000,
      { timeoutMs: 600_000 },
    );
    for await (const batch of reads) {
      for (const row of batch) if (row.author_id !== target.authorId && filterNames(parse(row.meta), target)) ids.add(Number(row.id));
    }
  }
  for (const record of target.records) {
    const about = store.stream<{ id: number | string; hash_version: number | string | null; author_id: string | null; personal_paths: string | null }>(
      statement(
        `SELECT "id", "hash_version", "author_id", "personal_paths" FROM "audit_log" WHERE "tenant_id" = ? AND "resource" = ? AND "resource_id" = ? AND "personal_paths" IS NOT NULL ORDER BY "id"`,
        [tenantId, record.resource, record.resourceId],
      ),
      1000,
      { timeoutMs: 600_000 },
    );
    for await (const batch of about) {
      for (const row of batch) {
        if (row.author_id === target.authorId) continue;
        if (Number(row.hash_version) === HASH_VERSION_GROUPED) ids.add(Number(row.id));
        else if ((parse(row.personal_paths) as string[] | null)?.some(isContentPointer)) left++;
      }
    }
  }
  return { ids: [...ids].sort((a, b) => a - b), left };
}

/**
 * Erases the target from the given entries, read again inside the transaction (another erasure or
 * retention may have changed them since they were found); the entries changed, by kind.
 */
export function* eraseOthersBatch(ids: readonly number[], erase: OthersEraser): Work<Array<{ id: number; kind: OthersKind; columns: ErasedColumns }>> {
  const { rows } = yield* exec<RawChainRow & { id: number | string }>(
    `SELECT "id", ${CHAIN_COLUMNS} FROM "audit_log" WHERE "id" IN (${ids.map(() => 'CAST(? AS BIGINT)').join(', ')})`,
    [...ids],
  );
  const changed: Array<{ id: number; kind: OthersKind; columns: ErasedColumns }> = [];
  for (const raw of rows) {
    const erased = erase(chainRowFromDb(raw));
    if (erased) changed.push({ id: Number(raw.id), ...erased });
  }
  return changed;
}
