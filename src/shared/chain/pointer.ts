/**
 * JSON Pointers (RFC 6901) name the personal values of an entry: `/authorName`, `/ip`, `/data/email`,
 * `/meta/contacts/0/phone`. They point into the entry's hashed facts (see canonical.ts).
 */
import type { JsonValue } from '../json.js';

export function encodePointer(segments: ReadonlyArray<string | number>): string {
  return segments.map((s) => `/${String(s).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
}

export function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new Error(`not a JSON pointer: "${pointer}"`);
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

type Container = { [key: string]: JsonValue } | JsonValue[];

function child(container: JsonValue | undefined, segment: string): JsonValue | undefined {
  if (Array.isArray(container)) return /^(0|[1-9]\d*)$/.test(segment) ? container[Number(segment)] : undefined;
  if (container !== null && typeof container === 'object') return Object.prototype.hasOwnProperty.call(container, segment) ? container[segment] : undefined;
  return undefined;
}

/** The value at `segments` inside `root`; `undefined` when there is none. */
export function valueAt(root: JsonValue | undefined, segments: readonly string[]): JsonValue | undefined {
  let current = root;
  for (const segment of segments) {
    current = child(current, segment);
    if (current === undefined) return undefined;
  }
  return current;
}

/** Replaces (or adds, in an existing object) the value at `segments`; false when its parent does not exist. */
export function replaceAt(root: JsonValue, segments: readonly string[], value: JsonValue): boolean {
  if (segments.length === 0) return false;
  const parent = valueAt(root, segments.slice(0, -1));
  const last = segments[segments.length - 1]!;
  if (Array.isArray(parent)) {
    if (!/^(0|[1-9]\d*)$/.test(last) || Number(last) >= parent.length) return false;
    parent[Number(last)] = value;
    return true;
  }
  if (parent === null || typeof parent !== 'object') return false;
  (parent as Exclude<Container, JsonValue[]>)[last] = value;
  return true;
}
