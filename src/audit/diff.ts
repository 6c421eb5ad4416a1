import { isDeepStrictEqual } from 'node:util';
import { isJsonObject, type JsonValue, type StoredJson } from '../shared/json.js';

export type FieldChangeKind = 'ADDED' | 'REMOVED' | 'CHANGED';

/** One field of an entry that changed, with its values before and after (both masked when redacted). */
export interface FieldChange {
  field: string;
  kind: FieldChangeKind;
  from: JsonValue | null;
  to: JsonValue | null;
}

/** The whole value, when either side is not an object. */
export const WHOLE_VALUE = '$';

/**
 * Field-level diff between two states, keys sorted. Nested objects and arrays are compared by value and
 * reported as one change of the top-level field, which is how users read "what changed in this record".
 */
export function diff(
  previous: JsonValue | StoredJson | null | undefined,
  next: JsonValue | StoredJson | null | undefined,
  redactedChanges: readonly string[] = [],
): FieldChange[] {
  // Stored values are JSON that was parsed from text: JsonValue, whatever the entity column's looser type says.
  const before = (previous ?? null) as JsonValue;
  const after = (next ?? null) as JsonValue;
  if (isJsonObject(before) || isJsonObject(after)) {
    const from = isJsonObject(before) ? before : {};
    const to = isJsonObject(after) ? after : {};
    const fields = [...new Set([...Object.keys(from), ...Object.keys(to)])].sort();
    const changes: FieldChange[] = [];
    for (const field of fields) {
      const had = Object.hasOwn(from, field);
      const has = Object.hasOwn(to, field);
      const a = had ? (from[field] ?? null) : null;
      const b = has ? (to[field] ?? null) : null;
      if (had && has && isDeepStrictEqual(a, b) && !redactedChanges.includes(field)) continue;
      changes.push({ field, kind: had && has ? 'CHANGED' : has ? 'ADDED' : 'REMOVED', from: a, to: b });
    }
    return changes;
  }
  if (isDeepStrictEqual(before, after)) return [];
  return [{ field: WHOLE_VALUE, kind: before === null ? 'ADDED' : after === null ? 'REMOVED' : 'CHANGED', from: before, to: after }];
}
