import { stringify } from 'csv-stringify/sync';
import { DateTimeISOResolver } from 'graphql-scalars';
import type { ViewerRestriction } from '../auth/principal.js';
import { AuditLog } from '../db/entities/audit-log.entity.js';
import type { ReadOptions } from '../db/store.js';
import { CHAIN_COLUMNS, chainExportFields, chainRowFromDb, type RawChainRow } from '../shared/chain/rows.js';
import { badUserInput } from '../shared/errors.js';
import { applyAuditLogFilter, parseAuditLogFilter, planSearch, type AuditLogFilter, type AuditLogFilterInput } from './audit-log-filter.js';
import { toStatement, type AuditLogOrder } from './audit-log-query.js';
import type { ServiceDeps } from './deps.js';
import { confine } from './viewer-tokens.js';

export const EXPORT_FORMATS = ['csv', 'ndjson', 'json'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/**
 * An export is written in the chain's order unless asked otherwise: a file that starts at the first entry
 * and runs oldest first is what `auditql verify --file` and the README's script check.
 */
export const DEFAULT_EXPORT_ORDER: AuditLogOrder = 'OLDEST_FIRST';

/** Rows read from the cursor per batch (one batch is one chunk handed to the response). */
export const EXPORT_BATCH_ROWS = 500;

/**
 * The time budget of one batch (queueing included): far above READ_TIMEOUT_MS, since the first batch of
 * a search or of a newest-first export may have to sort what it matches before it has a row to give.
 */
export const EXPORT_BATCH_TIMEOUT_MS = 60_000;

/** The filter fields of `AuditLogFilter`, as export parameters take them. */
const LIST_FIELDS = ['resource', 'action', 'authorId'] as const;
const SINGLE_FIELDS = ['resourceId', 'transactionId', 'search', 'from', 'to'] as const;
export const EXPORT_FILTER_FIELDS: readonly string[] = [...LIST_FIELDS, ...SINGLE_FIELDS];

/** What an export was asked for, as the caller gave it (recorded in the meta-audit entry). */
export interface ExportRequest {
  format: ExportFormat;
  orderBy: AuditLogOrder;
  /** The filter as given (dates as ISO strings), for the record. */
  filter: Record<string, unknown>;
  input: AuditLogFilterInput;
}

function dateTime(value: unknown, field: string): Date {
  try {
    return DateTimeISOResolver.parseValue(value) as Date;
  } catch {
    throw badUserInput(`filter.${field} must be an ISO-8601 instant such as 2026-01-31T23:00:00Z`, `filter.${field}`);
  }
}

/**
 * Reads an export's parameters: `format`, `orderBy` and the filter, either as repeated parameters
 * (`resource=a&resource=b&from=…`) or as one JSON `filter` (an `AuditLogFilter`, dates as ISO strings),
 * not both. `values(name)` gives every value of one parameter (URL query parameters, command-line options).
 * Anything malformed is BAD_USER_INPUT, as the same mistake in GraphQL would be.
 */
export function parseExportRequest(values: (name: string) => readonly string[], defaults: { format?: ExportFormat } = {}): ExportRequest {
  const one = (name: string): string | undefined => {
    const all = values(name);
    if (all.length > 1) throw badUserInput(`"${name}" may be given once`, name);
    return all[0];
  };
  const format = one('format') ?? defaults.format;
  if (!format || !(EXPORT_FORMATS as readonly string[]).includes(format)) throw badUserInput(`"format" must be one of ${EXPORT_FORMATS.join(', ')}`, 'format');
  const orderBy = one('orderBy') ?? DEFAULT_EXPORT_ORDER;
  if (orderBy !== 'NEWEST_FIRST' && orderBy !== 'OLDEST_FIRST') throw badUserInput('"orderBy" must be NEWEST_FIRST or OLDEST_FIRST', 'orderBy');

  const json = one('filter');
  const separate = EXPORT_FILTER_FIELDS.filter((field) => values(field).length > 0);
  let given: Record<string, unknown> = {};
  if (json !== undefined) {
    if (separate.length > 0) throw badUserInput(`Give the filter either as "filter" or as separate parameters (${separate.join(', ')}), not both`, 'filter');
    try {
      given = JSON.parse(json) as Record<string, unknown>;
    } catch {
      throw badUserInput('"filter" must be a JSON object (an AuditLogFilter)', 'filter');
    }
    if (given === null || typeof given !== 'object' || Array.isArray(given)) throw badUserInput('"filter" must be a JSON object (an AuditLogFilter)', 'filter');
    const unknown = Object.keys(given).filter((key) => !EXPORT_FILTER_FIELDS.includes(key));
    if (unknown.length > 0) throw badUserInput(`Unknown filter field ${unknown.map((k) => `"${k}"`).join(', ')}`, 'filter');
  } else {
    for (const field of LIST_FIELDS) if (values(field).length > 0) given[field] = [...values(field)];
    for (const field of SINGLE_FIELDS) {
      const value = one(field);
      if (value !== undefined) given[field] = value;
    }
  }

  const input: AuditLogFilterInput = {};
  for (const field of LIST_FIELDS) {
    const value = given[field];
    if (value === undefined || value === null) continue;
    const ok = Array.isArray(value) && value.every((v) => typeof v === 'string' || (field === 'authorId' && typeof v === 'number'));
    if (!ok) throw badUserInput(`filter.${field} must be a list of strings`, `filter.${field}`);
    input[field] = value as string[];
  }
  for (const field of ['resourceId', 'transactionId', 'search'] as const) {
    const value = given[field];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'string') throw badUserInput(`filter.${field} must be a string`, `filter.${field}`);
    input[field] = value;
  }
  for (const field of ['from', 'to'] as const) {
    const value = given[field];
    if (value === undefined || value === null) continue;
    input[field] = dateTime(value, field);
  }
  return { format: format as ExportFormat, orderBy, filter: given, input };
}

/** The validated filter of an export: the caller's tenant, narrowed to a viewer token's restriction. */
export function exportFilter(request: ExportRequest, tenantId: string, restriction?: ViewerRestriction): AuditLogFilter {
  return confine(parseAuditLogFilter(request.input, tenantId), restriction);
}

export interface RawExportRow extends RawChainRow {
  id: number | string;
  name: string | null;
}

/**
 * The entries a filter selects, in list order (createdAt, then id), in batches read from one cursor as
 * the consumer asks for them: one statement, so one snapshot of the log however long the export takes
 * (SQLite: one read transaction on a reader thread; PostgreSQL: a cursor in a read-only transaction).
 */
export async function* exportRows(deps: Pick<ServiceDeps, 'dataSource' | 'store'>, given: AuditLogFilter, order: AuditLogOrder, reads: ReadOptions = {}): AsyncGenerator<RawExportRow[]> {
  const filter = await planSearch(deps, given, reads);
  const columns = ['"id"', '"name"', ...CHAIN_COLUMNS.split(', ')].map((column) => `"a".${column} AS ${column}`).join(', ');
  const direction = order === 'NEWEST_FIRST' ? 'DESC' : 'ASC';
  const qb = applyAuditLogFilter(deps.dataSource.createQueryBuilder(AuditLog, 'a').select(columns), filter);
  qb.orderBy('a.createdAt', direction).addOrderBy('a.id', direction);
  yield* deps.store.stream<RawExportRow>(toStatement(qb), EXPORT_BATCH_ROWS, { ...reads, timeoutMs: EXPORT_BATCH_TIMEOUT_MS });
}

/**
 * One entry as an export line (NDJSON, or an element of the JSON array): its id and label, and everything
 * `auditql verify --file` needs (README, "Evidence": the hashed facts, salt, erased digests, previousHash, hash).
 */
export function exportRecord(raw: RawExportRow): Record<string, unknown> {
  return { id: String(raw.id), name: raw.name, ...chainExportFields(chainRowFromDb(raw)) };
}

const text = (value: string | null) => JSON.stringify(value);
/** A JSON column as stored: the writer keeps its JSON text (canonical, compact), which goes into the line as it is. */
const stored = (value: unknown, none = 'null') => (value === null || value === undefined ? none : typeof value === 'string' ? value : JSON.stringify(value));

/**
 * `JSON.stringify(exportRecord(raw))`, without parsing and re-serialising the JSON columns: their stored text
 * is already the compact JSON that serialising would give, so it is copied in. About 4× faster on the
 * bench's entries, which is most of an export's CPU time.
 */
export function exportLine(raw: RawExportRow): string {
  return (
    `{"id":${text(String(raw.id))},"name":${text(raw.name)},"tenantId":${text(raw.tenant_id)},"sequence":${Number(raw.sequence)},` +
    `"createdAt":${Number(raw.created_at)},"resource":${text(raw.resource)},"resourceId":${text(raw.resource_id)},"action":${text(raw.action)},` +
    `"authorId":${text(raw.author_id)},"authorName":${text(raw.author_name)},"authorType":${text(raw.author_type)},` +
    `"data":${stored(raw.data)},"previousData":${stored(raw.previous_data)},"meta":${stored(raw.meta)},"ip":${text(raw.ip)},` +
    `"userAgent":${text(raw.user_agent)},"transactionId":${text(raw.transaction_id)},"idempotencyKey":${text(raw.idempotency_key)},` +
    `"redactedChanges":${stored(raw.redacted_changes)},"recordedBy":${text(raw.recorded_by)},"hashVersion":${Number(raw.hash_version)},` +
    `"personalPaths":${stored(raw.personal_paths, '[]')},"salt":${text(raw.salt)},"erasedDigests":${stored(raw.erased_digests)},` +
    `"previousHash":${text(raw.previous_hash ?? '')},"hash":${text(raw.hash ?? '')}}`
  );
}

/** CSV columns, in order: the members of an export line. */
export const CSV_COLUMNS = [
  'id', 'sequence', 'createdAt', 'tenantId', 'resource', 'resourceId', 'action', 'name', 'authorId', 'authorName', 'authorType',
  'data', 'previousData', 'meta', 'ip', 'userAgent', 'transactionId', 'idempotencyKey', 'redactedChanges', 'recordedBy',
  'hashVersion', 'personalPaths', 'salt', 'erasedDigests', 'previousHash', 'hash',
] as const;

/**
 * A spreadsheet takes a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return as a formula
 * (OWASP "CSV injection"): such a cell gets a leading `'`, which spreadsheets show as text and hide.
 */
const FORMULA_START = /^[=+\-@\t\r]/;
export function neutraliseFormula(cell: string): string {
  return FORMULA_START.test(cell) ? `'${cell}` : cell;
}

/** Columns holding JSON values: written as JSON text (a string value keeps its quotes, `-7` is text too). */
const JSON_COLUMNS: ReadonlySet<string> = new Set(['data', 'previousData', 'meta', 'redactedChanges', 'personalPaths', 'erasedDigests']);

function csvCell(column: string, value: unknown): string | number | null {
  if (value === null || value === undefined) return null;
  if (JSON_COLUMNS.has(column)) return neutraliseFormula(JSON.stringify(value));
  // sequence, createdAt, hashVersion: whole numbers, never negative.
  if (typeof value === 'number') return value;
  return neutraliseFormula(String(value));
}

function csvRows(records: Array<Record<string, unknown>>): Array<Array<string | number | null>> {
  return records.map((record) => CSV_COLUMNS.map((column) => csvCell(column, record[column])));
}

/** What an export produced: rows handed on, and whether it reached the end of the cursor. */
export interface ExportProgress {
  rows: number;
  complete: boolean;
}

/**
 * An export's text, chunk by chunk (one chunk per batch of rows), pulled by the consumer: nothing is read
 * from the cursor before the consumer has taken the previous chunk. `progress` counts the rows handed on.
 * - `ndjson`: one export line per entry.
 * - `json`: one array of the same objects.
 * - `csv` (RFC 4180, csv-stringify: CRLF line ends, fields quoted as needed): a header row, then one row per entry; JSON values as JSON text, null
 *   as an empty cell, and cells that a spreadsheet would run as a formula neutralised.
 */
export async function* exportChunks(batches: AsyncIterable<RawExportRow[]>, format: ExportFormat, progress: ExportProgress = { rows: 0, complete: false }): AsyncGenerator<string> {
  let first = true;
  if (format === 'csv') yield stringify([], { header: true, columns: [...CSV_COLUMNS], record_delimiter: 'windows' });
  if (format === 'json') yield '[';
  for await (const batch of batches) {
    let chunk: string;
    if (format === 'csv') chunk = stringify(csvRows(batch.map(exportRecord)), { quoted_match: /^'/, record_delimiter: 'windows' });
    else if (format === 'ndjson') chunk = `${batch.map(exportLine).join('\n')}\n`;
    else {
      chunk = (first ? '\n' : ',\n') + batch.map(exportLine).join(',\n');
      first = false;
    }
    progress.rows += batch.length;
    yield chunk;
  }
  if (format === 'json') yield first ? ']\n' : '\n]\n';
  progress.complete = true;
}

export const EXPORT_CONTENT_TYPES: Record<ExportFormat, string> = {
  csv: 'text/csv; charset=utf-8; header=present',
  ndjson: 'application/x-ndjson; charset=utf-8',
  json: 'application/json; charset=utf-8',
};

/** `auditql-<tenant>-<yyyy-mm-ddThh-mm-ssZ>.<format>`: names sort by time and hold no character a file system refuses. */
export function exportFileName(tenantId: string, format: ExportFormat, at = new Date()): string {
  const stamp = at.toISOString().slice(0, 19).replace(/:/g, '-');
  return `auditql-${tenantId.replace(/[^A-Za-z0-9._-]/g, '_')}-${stamp}Z.${format}`;
}
