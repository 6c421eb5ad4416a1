import type { EntityMetadata, ObjectLiteral } from 'typeorm';
import type { ColumnMetadata } from 'typeorm/metadata/ColumnMetadata.js';
import type { JsonObject, JsonValue } from '../shared/json.js';
import { REDACTED, type ResolvedEntityOptions } from './options.js';

const MAX_DEPTH = 16;

/** Which field rules to apply: records get all three, `meta` only redaction and drop rules. */
export type SanitizeRules = Pick<ResolvedEntityOptions, 'isIgnored' | 'isRedacted' | 'isDropped'>;

/**
 * A JSON-safe copy of a value: dates as ISO strings, bigints as strings, buffers as a short description,
 * circular references cut, ignored and dropped fields removed and redacted fields masked at any depth
 * (inside arrays too).
 */
export function sanitize(value: unknown, options: SanitizeRules): JsonValue {
  return sanitizeValue(value, options, []);
}

/** `path` holds the objects being copied above this one (at most MAX_DEPTH): a cycle is one found in it. */
function sanitizeValue(value: unknown, options: SanitizeRules, path: object[]): JsonValue {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return `<binary ${value.byteLength} bytes>`;
  if (typeof value !== 'object') return String(value);
  if (path.length >= MAX_DEPTH || path.includes(value)) return '[Circular]';
  path.push(value);
  try {
    if (Array.isArray(value)) return value.map((item) => sanitizeValue(item, options, path));
    const out: JsonObject = {};
    for (const key in value) {
      if (!Object.hasOwn(value, key)) continue;
      const child: unknown = (value as Record<string, unknown>)[key];
      if (child === undefined || typeof child === 'function' || options.isIgnored(key) || options.isDropped(key)) continue;
      out[key] = options.isRedacted(key) ? REDACTED : sanitizeValue(child, options, path);
    }
    return out;
  } finally {
    path.pop();
  }
}

const EXACT_NUMBERS = new Set(['decimal', 'numeric', 'dec', 'money', 'bigint', 'int8']);
const exactByColumn = new WeakMap<ColumnMetadata, boolean>();

function isExact(column: ColumnMetadata): boolean {
  let exact = exactByColumn.get(column);
  if (exact === undefined) {
    exact = typeof column.type === 'string' && EXACT_NUMBERS.has(column.type.toLowerCase());
    exactByColumn.set(column, exact);
  }
  return exact;
}

/**
 * Exact numbers are recorded as strings, the same on every driver (PostgreSQL returns decimals as strings,
 * SQLite as floats): a decimal with its scale ("9.50"), a bigint in full.
 */
function exactNumber(column: ColumnMetadata, value: unknown): unknown {
  if (!isExact(column)) return value;
  if (typeof value === 'number' && column.scale !== undefined) return value.toFixed(column.scale);
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  return value;
}

/**
 * A row's image: its column values by property path (`firstName`, `counters.likes`, `category.id` for a
 * relation's join column: the relation and the column it references), before sanitising.
 */
export type Image = ObjectLiteral;

const imageColumnsByMetadata = new WeakMap<EntityMetadata, ColumnMetadata[]>();

/**
 * The columns an image holds: every stored column, except computed `@VirtualColumn`s and the bookkeeping
 * columns of tree entities (materialized path, nested-set bounds), which TypeORM rewrites for other rows with
 * raw SQL that no subscriber sees; a tree is recorded through its parent relation instead.
 */
export function imageColumns(metadata: EntityMetadata): ColumnMetadata[] {
  let columns = imageColumnsByMetadata.get(metadata);
  if (!columns) {
    const seen = new Set<string>();
    columns = metadata.columns.filter((column) => {
      if (column.isVirtualProperty || column.isMaterializedPath || column.isNestedSetLeft || column.isNestedSetRight) return false;
      if (seen.has(column.propertyPath)) return false;
      seen.add(column.propertyPath);
      return true;
    });
    imageColumnsByMetadata.set(metadata, columns);
  }
  return columns;
}

/**
 * The image of an entity object (as TypeORM hands it to subscribers); columns it does not hold are absent, or
 * taken from `fallback`; `only` limits which columns are read from the entity (the rest come from `fallback`).
 */
export function columnValues(metadata: EntityMetadata, entity: ObjectLiteral, fallback?: Image, only?: (column: ColumnMetadata) => boolean): Image {
  const out: Image = {};
  for (const column of imageColumns(metadata)) {
    let value = only && !only(column) ? undefined : column.getEntityValue(entity);
    if (value === undefined && fallback) value = fallback[column.propertyPath];
    else if (value !== undefined) value = exactNumber(column, value);
    if (value === undefined) continue;
    out[column.propertyPath] = value;
  }
  return out;
}

/** The image of a raw database row (keyed by column database names), hydrated by the driver like TypeORM does. */
export function hydrateImage(metadata: EntityMetadata, driver: { prepareHydratedValue(value: unknown, column: ColumnMetadata): unknown }, raw: ObjectLiteral): Image {
  const out: Image = {};
  for (const column of imageColumns(metadata)) {
    if (!(column.databaseName in raw)) continue;
    out[column.propertyPath] = exactNumber(column, driver.prepareHydratedValue(raw[column.databaseName], column));
  }
  return out;
}

/** Whether an image lacks a column it should hold (the entity object did not carry it). */
export function isIncomplete(metadata: EntityMetadata, image: Image): boolean {
  return imageColumns(metadata).some((column) => !(column.propertyPath in image));
}

/** The rules `recordId` applies: a key column that is redacted or dropped is masked (see `keyMask`). */
export type KeyRules = Pick<ResolvedEntityOptions, 'isRedacted' | 'isDropped' | 'maskKey'>;

/**
 * The primary key as recorded in `resourceId`: the value itself, or sorted-key JSON for composite keys. A key
 * column whose field is redacted or dropped gives its stand-in instead (`[REDACTED]`, or a keyed digest): a
 * value that `data` must not hold must not be in `resourceId` either.
 */
export function recordId(metadata: EntityMetadata, image: Image | undefined, rules: KeyRules): string | null {
  if (!image) return null;
  const parts: Array<[string, unknown]> = [];
  for (const column of metadata.primaryColumns) {
    const value: unknown = image[column.propertyPath];
    if (value === undefined || value === null) return null;
    const plain = value instanceof Date ? value.toISOString() : typeof value === 'bigint' ? value.toString() : value;
    const hidden = rules.isRedacted(column.propertyPath) || rules.isDropped(column.propertyPath);
    parts.push([column.propertyPath, hidden ? rules.maskKey(String(plain)) : plain]);
  }
  if (parts.length === 0) return null;
  if (parts.length === 1) return String(parts[0]![1]);
  parts.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify(Object.fromEntries(parts));
}
