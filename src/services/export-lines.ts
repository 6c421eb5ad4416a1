/**
 * The text of an export (NDJSON, JSON, CSV), made from rows read as arrays in EXPORT_SELECT's order. One
 * definition for both places an export is written: on a SQLite reader thread (the thread loads this module
 * and sends the server finished text; see ReadPool.streamWritten) and in the server for the other
 * databases. So that a reader thread can load it alone, it imports nothing of the server but the chain's
 * row reading (which itself imports only types).
 */
import { stringify } from 'csv-stringify/sync';
import { CHAIN_COLUMNS, chainExportFields, chainRowFromArray, type RawChainRow } from '../shared/chain/rows.js';

export const EXPORT_FORMATS = ['csv', 'ndjson', 'json'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** Columns of an export row, in order: the id and the chain's columns (as chainRowFromArray reads them), then the label. */
export const EXPORT_COLUMNS: readonly string[] = ['id', ...CHAIN_COLUMNS.split(', ').map((column) => column.slice(1, -1)), 'name'];
const NAME = EXPORT_COLUMNS.length - 1;

export interface RawExportRow extends RawChainRow {
  id: number | string;
  name: string | null;
}

/** A row read by column name (PostgreSQL, SQLite in memory) in EXPORT_COLUMNS order. */
export function exportRowValues(raw: RawExportRow): unknown[] {
  const row = raw as unknown as Record<string, unknown>;
  return EXPORT_COLUMNS.map((column) => row[column]);
}

/**
 * One entry as an export line (NDJSON, or an element of the JSON array): its id and label, and everything
 * `auditql verify --file` needs (README, "Evidence": the hashed facts, salt, erased digests, previousHash, hash).
 */
export function exportRecord(row: readonly unknown[]): Record<string, unknown> {
  return { id: String(row[0]), name: row[NAME], ...chainExportFields(chainRowFromArray(row)) };
}

const text = (value: unknown) => JSON.stringify(value as string | null);
/** A JSON column as stored: the writer keeps its JSON text (canonical, compact), which goes into the line as it is. */
const stored = (value: unknown, none = 'null') => (value === null || value === undefined ? none : typeof value === 'string' ? value : JSON.stringify(value));

/**
 * `JSON.stringify(exportRecord(row))`, without parsing and re-serialising the JSON columns: their stored text
 * is already the compact JSON that serialising would give, so it is copied in. About 4× faster on the
 * bench's entries, which is most of an export's CPU time.
 */
export function exportLine(row: readonly unknown[]): string {
  return (
    `{"id":${text(String(row[0]))},"name":${text(row[NAME])},"tenantId":${text(row[1])},"sequence":${Number(row[2])},` +
    `"createdAt":${Number(row[9])},"resource":${text(row[10])},"resourceId":${text(row[11])},"action":${text(row[12])},` +
    `"authorId":${text(row[13])},"authorName":${text(row[14])},"authorType":${text(row[15])},` +
    `"data":${stored(row[16])},"previousData":${stored(row[17])},"meta":${stored(row[18])},"ip":${text(row[19])},` +
    `"userAgent":${text(row[20])},"transactionId":${text(row[21])},"idempotencyKey":${text(row[22])},` +
    `"redactedChanges":${stored(row[23])},"recordedBy":${text(row[24])},"hashVersion":${Number(row[5])},` +
    `"personalPaths":${stored(row[7], '[]')},"salt":${text(row[6])},"erasedDigests":${stored(row[8])},` +
    `"previousHash":${text(row[4] ?? '')},"hash":${text(row[3] ?? '')}}`
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

/** The CSV header row (RFC 4180 as csv-stringify writes it: CRLF line ends, fields quoted as needed). */
const CSV_HEADER = stringify([], { header: true, columns: [...CSV_COLUMNS], record_delimiter: 'windows' });
const CSV_OPTIONS = { quoted_match: /^'/, record_delimiter: 'windows' } as const;

/** What comes before the first row of an export. */
export function exportHead(format: ExportFormat): string {
  return format === 'csv' ? CSV_HEADER : format === 'json' ? '[' : '';
}

/** What comes after the last row of an export, given whether it had any rows. */
export function exportTail(format: ExportFormat, anyRows: boolean): string {
  return format === 'json' ? (anyRows ? '\n]\n' : ']\n') : '';
}

/**
 * The text of an export's rows, one call per run of consecutive rows (the function remembers whether a
 * JSON array element came before); the head and tail go around it.
 * - `ndjson`: one export line per entry, each ended by `\n`.
 * - `json`: the same lines as elements of one array, one per line.
 * - `csv`: one row per entry; JSON values as JSON text, null as an empty cell, and cells that a spreadsheet
 *   would run as a formula neutralised (and quoted).
 */
export function exportRowWriter(format: ExportFormat): (rows: ReadonlyArray<readonly unknown[]>) => string {
  if (format === 'ndjson') {
    return (rows) => {
      let out = '';
      for (const row of rows) out += `${exportLine(row)}\n`;
      return out;
    };
  }
  if (format === 'json') {
    let first = true;
    return (rows) => {
      let out = '';
      for (const row of rows) {
        out += (first ? '\n' : ',\n') + exportLine(row);
        first = false;
      }
      return out;
    };
  }
  return (rows) => (rows.length === 0 ? '' : stringify(rows.map((row) => csvRecord(exportRecord(row))), CSV_OPTIONS));
}

function csvRecord(record: Record<string, unknown>): Array<string | number | null> {
  return CSV_COLUMNS.map((column) => csvCell(column, record[column]));
}

/** The row writer a reader thread makes (see ReadPool.streamWritten): `options` is the export's format. */
export function createRowWriter(options: unknown): (rows: ReadonlyArray<readonly unknown[]>) => string {
  if (!(EXPORT_FORMATS as readonly unknown[]).includes(options)) throw new Error(`not an export format: ${String(options)}`);
  return exportRowWriter(options as ExportFormat);
}
