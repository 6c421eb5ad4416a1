/**
 * Appending to the chain, as a pure step: given each tenant's head, assign every new entry its sequence,
 * salt, personal paths and hash, and return the new heads. The caller reads the heads and writes the
 * entries and the new heads in one transaction (src/audit/chain/head.ts does the I/O).
 */
import { randomBytes } from 'node:crypto';
import type { JsonValue } from '../json.js';
import { canonicalJson, entryHash, HASH_VERSION, HASH_VERSION_GROUPED, isContentPointer, type ChainRow } from './canonical.js';
import { findPersonalPaths, findPersonalPathsDeclared, type FieldMatcher } from './personal.js';

export interface ChainHead {
  sequence: number;
  hash: string;
}

/** An entry as the writer holds it, before it has a place in the chain. */
export interface UnlinkedEntry {
  tenantId: string;
  createdAt: number;
  resource: string;
  resourceId: string | null;
  action: string;
  authorId: string | null;
  authorName: string | null;
  authorType: string | null;
  data: JsonValue | null;
  previousData: JsonValue | null;
  meta: JsonValue | null;
  ip: string | null;
  userAgent: string | null;
  transactionId: string | null;
  idempotencyKey: string | null;
  redactedChanges: string[] | null;
  recordedBy: string | null;
  /**
   * Pointers inside data, previousData or meta that the writer declares personal whatever their names, as
   * values that may be someone else's (the filter of a read of the log), like those the rules find there.
   */
  declaredPersonal?: readonly string[] | null;
}

/** Everything the chain adds to an entry, and the JSON columns in the form they are stored (JCS text). */
export type LinkedEntry = ChainRow;

/**
 * Links `entries` in order onto `heads` (tenant → head; a tenant without one starts from `genesis`).
 * Returns the linked rows, index for index, and the heads after them.
 */
export function linkEntries(
  heads: ReadonlyMap<string, ChainHead>,
  entries: readonly UnlinkedEntry[],
  personal: FieldMatcher,
): { rows: LinkedEntry[]; heads: Map<string, ChainHead> } {
  const next = new Map(heads);
  // Version 2 for an entry with personal values inside its JSON (a record's, a read's filter: possibly
  // someone other than its author's), so that they can be erased apart from the author's.
  const grouped: boolean[] = [];
  const paths = entries.map((entry, i) => {
    const found = entry.declaredPersonal?.length ? findPersonalPathsDeclared(entry, personal, entry.declaredPersonal) : findPersonalPaths(entry, personal);
    grouped[i] = found.some(isContentPointer);
    return found;
  });
  const salts = randomBytes(16 * paths.filter((p) => p.length > 0).length).toString('hex');
  let saltAt = 0;
  const rows = entries.map((entry, i) => {
    const head = next.get(entry.tenantId);
    if (!head) throw new Error(`no chain head read for tenant ${entry.tenantId}`);
    const personalPaths = paths[i]!;
    // Built field by field: an object spread with overrides (`{ ...entry, data: … }`) makes a slow
    // dictionary-mode object, which cost ~10 µs per entry here (measured), more than hashing it.
    const row: ChainRow = {
      tenantId: entry.tenantId,
      createdAt: entry.createdAt,
      resource: entry.resource,
      resourceId: entry.resourceId,
      action: entry.action,
      authorId: entry.authorId,
      authorName: entry.authorName,
      authorType: entry.authorType,
      ip: entry.ip,
      userAgent: entry.userAgent,
      transactionId: entry.transactionId,
      idempotencyKey: entry.idempotencyKey,
      redactedChanges: entry.redactedChanges,
      recordedBy: entry.recordedBy,
      data: entry.data === null ? null : canonicalJson(entry.data),
      previousData: entry.previousData === null ? null : canonicalJson(entry.previousData),
      meta: entry.meta === null ? null : canonicalJson(entry.meta),
      sequence: head.sequence + 1,
      previousHash: head.hash,
      hashVersion: grouped[i] ? HASH_VERSION_GROUPED : HASH_VERSION,
      salt: personalPaths.length > 0 ? salts.slice(saltAt, (saltAt += 32)) : null,
      personalPaths,
      erasedDigests: null,
      hash: '',
    };
    row.hash = entryHash(row, head.hash);
    next.set(entry.tenantId, { sequence: row.sequence, hash: row.hash });
    return row;
  });
  return { rows, heads: next };
}
