/**
 * Erasure of an entry's personal values (GDPR Art. 17) as a pure step over a stored row (README, "Erasure"):
 * each personal value still present is replaced by its digest, kept in `erasedDigests`, and the value and
 * the salt go (version 2: the salt of a group whose values are erased; the other group's is kept). The hash
 * does not change, since every personal value entered it only as that digest.
 */
import type { JsonValue } from '../json.js';
import { canonicalJson, HASH_VERSION_GROUPED, isContentPointer, personalDigest, saltFor, type ChainRow } from './canonical.js';
import { parsePointer, replaceAt, valueAt } from './pointer.js';

/** What an erased value inside data, previousData or meta reads as. */
export const ERASED_MARKER = '[ERASED]';

/** The columns an erasure rewrites. */
export interface ErasedColumns {
  authorId: string | null;
  authorName: string | null;
  ip: string | null;
  userAgent: string | null;
  data: string | null;
  previousData: string | null;
  meta: string | null;
  /** Null, or (version 2, only the content erased) the salt of the actor's values, which stay. */
  salt: string | null;
  erasedDigests: Record<string, string> | null;
}

const JSON_COLUMNS = ['data', 'previousData', 'meta'] as const;

/**
 * The row's columns after erasure, or null when it has nothing left to erase. The author's id becomes
 * `pseudonym` when it is one of the entry's personal values; otherwise (an entry hashed with the id in
 * clear) it stays what it is, as it was hashed. The author's name, IP address and user agent become null;
 * personal values inside JSON become ERASED_MARKER, keeping their place so that the pointer still names it.
 */
export function eraseRow(row: ChainRow, pseudonym: string): ErasedColumns | null {
  const pending = row.personalPaths.filter((pointer) => row.erasedDigests?.[pointer] === undefined);
  if (pending.length === 0) return null;
  return erase(row, pending, null, (pointer) => {
    if (pointer === '/authorId') return pseudonym;
    if (pointer === '/authorName' || pointer === '/ip' || pointer === '/userAgent') return null;
    return ERASED_MARKER;
  });
}

/**
 * Erasure of the personal values inside data, previousData and meta of a version-2 entry, whose author's
 * values stay: each becomes what `replace` makes of it (ERASED_MARKER, a pseudonym), its digest is kept, and
 * the salt column keeps only the author's group salt. Null when the entry is of version 1 (one salt for
 * every value: erasing part of them would leave the rest's salt to test guesses against) or has no such
 * value left.
 */
export function eraseContent(row: ChainRow, replace: (pointer: string, value: JsonValue) => JsonValue): ErasedColumns | null {
  if (row.hashVersion !== HASH_VERSION_GROUPED) return null;
  const pending = row.personalPaths.filter((pointer) => isContentPointer(pointer) && row.erasedDigests?.[pointer] === undefined);
  if (pending.length === 0) return null;
  const actor = row.personalPaths.find((pointer) => !isContentPointer(pointer) && row.erasedDigests?.[pointer] === undefined);
  return erase(row, pending, actor === undefined ? null : saltFor(row, actor), replace);
}

/** The columns after the values at `pending` are replaced by `replacement` and their digests kept. */
function erase(row: ChainRow, pending: string[], keptSalt: string | null, replacement: (pointer: string, value: JsonValue) => JsonValue): ErasedColumns {
  const digests: Record<string, string> = { ...row.erasedDigests };
  const out: ErasedColumns = {
    authorId: row.authorId, authorName: row.authorName, ip: row.ip, userAgent: row.userAgent,
    data: row.data, previousData: row.previousData, meta: row.meta, salt: keptSalt, erasedDigests: digests,
  };
  const parsed: Partial<Record<(typeof JSON_COLUMNS)[number], JsonValue>> = {};
  for (const pointer of pending) {
    const salt = saltFor(row, pointer);
    if (salt === null) throw new Error(`entry ${row.tenantId}/${row.sequence}: personal values without a salt`);
    const [top = '', ...rest] = parsePointer(pointer);
    if (rest.length === 0) {
      if (top !== 'authorId' && top !== 'authorName' && top !== 'ip' && top !== 'userAgent') throw new Error(`personal path ${pointer} cannot be erased`);
      const value = row[top];
      if (value === null) throw new Error(`personal value ${pointer} is missing`);
      digests[pointer] = personalDigest(salt, pointer, value);
      const replaced = replacement(pointer, value);
      out[top] = typeof replaced === 'string' ? replaced : null;
      continue;
    }
    const column = JSON_COLUMNS.find((name) => name === top);
    if (!column) throw new Error(`personal path ${pointer} cannot be erased`);
    if (!(column in parsed)) parsed[column] = JSON.parse(row[column] ?? 'null') as JsonValue;
    const root = parsed[column]!;
    const value = valueAt(root, rest);
    if (value === undefined) throw new Error(`personal value ${pointer} is missing`);
    digests[pointer] = personalDigest(salt, pointer, value);
    replaceAt(root, rest, replacement(pointer, value));
  }
  for (const column of JSON_COLUMNS) if (column in parsed) out[column] = canonicalJson(parsed[column]!);
  return out;
}
