import type { EntityMetadata, ObjectLiteral } from 'typeorm';
import type { ColumnMetadata } from 'typeorm/metadata/ColumnMetadata.js';
import type { JsonObject, JsonValue } from '../shared/json.js';
import { REDACTED, type ResolvedEntityOptions } from './options.js';

const MAX_DEPTH = 16;

/**
 * A JSON-safe copy of a value: dates as ISO strings, bigints as strings, buffers as a short description,
 * circular references cut, ignored and dropped fields removed and redacted fields masked at any depth.
 */
export function sanitize(value: unknown, options: ResolvedEntityOptions, seen = new WeakSet<object>(), depth = 0): JsonValue {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return `<binary ${value.byteLength} bytes>`;
  if (typeof value !== 'object') return String(value);
  if (seen.has(value) || depth >= MAX_DEPTH) return '[Circular]';
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map((item) => sanitize(item, options, seen, depth + 1));
    const out: JsonObject = {};
    for (const [key, child] of Object.entries(value)) {
      if (child === undefined || typeof child === 'function' || options.isIgnored(key) || options.isDropped(key)) continue;
      out[key] = options.isRedacted(key) ? REDACTED : sanitize(child, options, seen, depth + 1);
    }
    return out;
  } finally {
    seen.delete(value);
  }
}

const EXACT_NUMBERS = new Set(['decimal', 'numeric', 'dec', 'money', 'bigint', 'int8']);

/**
 * Exact numbers are recorded as strings, the same on every driver (PostgreSQL returns decimals as strings,
 * SQLite as floats): a decimal with its scale ("9.50"), a bigint in full.
 */
function exactNumber(column: ColumnMetadata, value: unknown): unknown {
  if (typeof column.type !== 'string' || !EXACT_NUMBERS.has(column.type.toLowerCase())) return value;
  if (typeof value === 'number' && column.scale !== undefined) return value.toFixed(column.scale);
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  return value;
}

/** Column values of an entity (relations appear as their foreign-key ids), before sanitising. */
export function columnValues(metadata: EntityMetadata, entity: ObjectLiteral, fallback?: ObjectLiteral): ObjectLiteral {
  const out: ObjectLiteral = {};
  for (const column of metadata.columns) {
    let value = column.getEntityValue(entity);
    if (value === undefined && fallback) value = column.getEntityValue(fallback);
    if (value === undefined) continue;
    out[column.propertyPath] = exactNumber(column, value);
  }
  return out;
}

/** The primary key as recorded in `resourceId`: the value itself, or sorted-key JSON for composite keys. */
export function recordId(metadata: EntityMetadata, ...sources: Array<ObjectLiteral | undefined>): string | null {
  const parts: Array<[string, unknown]> = [];
  for (const column of metadata.primaryColumns) {
    let value: unknown;
    for (const source of sources) {
      if (source && value === undefined) value = column.getEntityValue(source);
    }
    if (value === undefined || value === null) return null;
    parts.push([column.propertyPath, value instanceof Date ? value.toISOString() : typeof value === 'bigint' ? value.toString() : value]);
  }
  if (parts.length === 1) return String(parts[0]![1]);
  parts.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify(Object.fromEntries(parts));
}
