/**
 * Erasure of an entry's personal values (GDPR Art. 17) as a pure step over a stored row (README, "Erasure"):
 * each personal value still present is replaced by its digest, kept in `erasedDigests`, and the value and
 * the salt go. The hash does not change, since every personal value entered it only as that digest.
 */
import type { JsonValue } from '../json.js';
import { canonicalJson, personalDigest, type ChainRow } from './canonical.js';
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
  salt: null;
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
  if (row.salt === null) throw new Error(`entry ${row.tenantId}/${row.sequence}: personal values without a salt`);
  const digests: Record<string, string> = { ...row.erasedDigests };
  const out: ErasedColumns = {
    authorId: row.authorId, authorName: row.authorName, ip: row.ip, userAgent: row.userAgent,
    data: row.data, previousData: row.previousData, meta: row.meta, salt: null, erasedDigests: digests,
  };
  const parsed: Partial<Record<(typeof JSON_COLUMNS)[number], JsonValue>> = {};
  for (const pointer of pending) {
    const [top = '', ...rest] = parsePointer(pointer);
    if (rest.length === 0) {
      if (top !== 'authorId' && top !== 'authorName' && top !== 'ip' && top !== 'userAgent') throw new Error(`personal path ${pointer} cannot be erased`);
      const value = row[top];
      if (value === null) throw new Error(`personal value ${pointer} is missing`);
      digests[pointer] = personalDigest(row.salt, pointer, value);
      out[top] = top === 'authorId' ? pseudonym : null;
      continue;
    }
    const column = JSON_COLUMNS.find((name) => name === top);
    if (!column) throw new Error(`personal path ${pointer} cannot be erased`);
    if (!(column in parsed)) parsed[column] = JSON.parse(row[column] ?? 'null') as JsonValue;
    const root = parsed[column]!;
    const value = valueAt(root, rest);
    if (value === undefined) throw new Error(`personal value ${pointer} is missing`);
    digests[pointer] = personalDigest(row.salt, pointer, value);
    replaceAt(root, rest, ERASED_MARKER);
  }
  for (const column of JSON_COLUMNS) if (column in parsed) out[column] = canonicalJson(parsed[column]!);
  return out;
}
