import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DateTimeISOResolver } from 'graphql-scalars';
import type { ViewerRestriction } from '../auth/principal.js';
import { AuditLog } from '../db/entities/audit-log.entity.js';
import type { WrittenBatch } from '../db/read-pool.js';
import type { Statement } from '../db/sql.js';
import type { ReadOptions } from '../db/store.js';
import { badUserInput } from '../shared/errors.js';
import { packageRoot } from '../shared/package-root.js';
import { applyAuditLogFilter, parseAuditLogFilter, planSearch, type AuditLogFilter, type AuditLogFilterInput } from './audit-log-filter.js';
import { toStatement, type AuditLogOrder } from './audit-log-query.js';
import type { ServiceDeps } from './deps.js';
import { EXPORT_COLUMNS, EXPORT_FORMATS, exportHead, exportRowValues, exportRowWriter, exportTail, type ExportFormat, type RawExportRow } from './export-lines.js';
import { confine } from './viewer-tokens.js';

export { EXPORT_FORMATS, type ExportFormat } from './export-lines.js';

/**
 * An export is written in the chain's order unless asked otherwise: a file that starts at the first entry
 * and runs oldest first is what `auditql verify --file` and the README's script check.
 */
export const DEFAULT_EXPORT_ORDER: AuditLogOrder = 'OLDEST_FIRST';

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

/** Rows per batch when the rows come to the server as objects (PostgreSQL, SQLite in memory). */
export const EXPORT_BATCH_ROWS = 500;

/**
 * A chunk written on a SQLite reader thread: at most 2,000 rows or about 1 MB of text, whichever comes
 * first, with a 2 MB page cache meanwhile (see ReadPool.streamWritten).
 */
export const EXPORT_WRITTEN_BATCH: WrittenBatch = { rows: 2000, bytes: 1 << 20, cacheKib: 2048 };

/** The row writer module, as a reader thread loads it: compiled beside this file, or the TypeScript source. */
function exportLinesModule(): string {
  const dir = typeof __dirname === 'string' ? __dirname : join(packageRoot(), 'src', 'services');
  const compiled = join(dir, 'export-lines.js');
  return existsSync(compiled) ? compiled : join(packageRoot(), 'src', 'services', 'export-lines.ts');
}

/**
 * The entries a filter selects as one SELECT in list order (createdAt, then id), columns in EXPORT_COLUMNS
 * order: one statement, so one snapshot of the log however long the export takes (SQLite: one read
 * transaction on a reader thread; PostgreSQL: a cursor in a read-only transaction).
 */
async function exportStatement(deps: Pick<ServiceDeps, 'dataSource' | 'store'>, given: AuditLogFilter, order: AuditLogOrder, reads: ReadOptions): Promise<Statement> {
  const filter = await planSearch(deps, given, reads);
  const columns = EXPORT_COLUMNS.map((column) => `"a"."${column}" AS "${column}"`).join(', ');
  const direction = order === 'NEWEST_FIRST' ? 'DESC' : 'ASC';
  const qb = applyAuditLogFilter(deps.dataSource.createQueryBuilder(AuditLog, 'a').select(columns), filter);
  qb.orderBy('a.createdAt', direction).addOrderBy('a.id', direction);
  return toStatement(qb);
}

/** What an export produced: rows handed on, and whether it reached the end of the cursor. */
export interface ExportProgress {
  rows: number;
  complete: boolean;
}

const bytes = (text: string): Buffer => Buffer.from(text, 'utf8');

/**
 * An export's bytes, chunk by chunk, pulled by the consumer: nothing more is read from the cursor than the
 * chunk the consumer takes next (and, on SQLite, the one after it). `progress` counts the rows handed on.
 * The text is that of export-lines.ts: on a SQLite file it is written on the reader thread, which sends
 * finished UTF-8; elsewhere rows come in batches of objects and are written here.
 */
export async function* exportBytes(
  deps: Pick<ServiceDeps, 'dataSource' | 'store'>,
  given: AuditLogFilter,
  order: AuditLogOrder,
  format: ExportFormat,
  reads: ReadOptions = {},
  progress: ExportProgress = { rows: 0, complete: false },
): AsyncGenerator<Buffer> {
  const statement = await exportStatement(deps, given, order, reads);
  const budget = { ...reads, timeoutMs: EXPORT_BATCH_TIMEOUT_MS };
  const head = exportHead(format);
  if (head) yield bytes(head);
  if (deps.store.streamWritten) {
    const chunks = deps.store.streamWritten(statement, { module: exportLinesModule(), options: format }, EXPORT_WRITTEN_BATCH, budget);
    for await (const chunk of chunks) {
      progress.rows += chunk.rows;
      yield Buffer.from(chunk.text.buffer, chunk.text.byteOffset, chunk.text.byteLength);
    }
  } else {
    const write = exportRowWriter(format);
    for await (const batch of deps.store.stream<RawExportRow>(statement, EXPORT_BATCH_ROWS, budget)) {
      const text = write(batch.map(exportRowValues));
      progress.rows += batch.length;
      yield bytes(text);
    }
  }
  const tail = exportTail(format, progress.rows > 0);
  if (tail) yield bytes(tail);
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
