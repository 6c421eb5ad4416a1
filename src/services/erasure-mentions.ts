/**
 * Erasure of a person from others' reads of the log (README, "Erasure"): a read, stream or export records
 * its filter, and a filter by the person's author id names them. Those filter values are declared personal
 * when recorded (meta-audit.ts) and hashed with version 2, so they are erased on their own, the reader's
 * values staying as they were.
 */
import { ERASED_MARKER } from '../shared/chain/erase.js';
import type { JsonValue } from '../shared/json.js';

/**
 * Whether a version-2 entry's recorded filter names the author (`meta.filter.authorId`, one id or a list):
 * a read of the log by someone else that looked for the person's entries.
 */
export function filterNames(meta: string | null, authorId: string): boolean {
  if (meta === null) return false;
  try {
    return filterValueNames(JSON.parse(meta), authorId);
  } catch {
    return false;
  }
}

/** filterNames over the parsed value of meta (an export line or an archive holds it as JSON). */
export function filterValueNames(meta: unknown, authorId: string): boolean {
  const filter = (meta as { filter?: { authorId?: unknown } } | null)?.filter?.authorId;
  return filter === authorId || (Array.isArray(filter) && filter.includes(authorId));
}

/**
 * The erased form of a recorded filter's personal values: the ids filtered by become their pseudonyms (so
 * the read still shows whose entries it looked at, to those who hold the key), anything else ERASED_MARKER.
 */
/** What an erased filter value becomes, by its pointer. */
export type MentionReplacement = (pointer: string, value: JsonValue) => JsonValue;

export function mentionReplacement(pseudonymFor: (id: string) => string): MentionReplacement {
  return (pointer, value) => {
    if (pointer !== '/meta/filter/authorId') return ERASED_MARKER;
    if (typeof value === 'string') return pseudonymFor(value);
    if (Array.isArray(value)) return value.map((id) => (typeof id === 'string' ? pseudonymFor(id) : ERASED_MARKER));
    return ERASED_MARKER;
  };
}

