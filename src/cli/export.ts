import { createWriteStream, renameSync, rmSync } from 'node:fs';
import { userInfo } from 'node:os';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { GraphQLError } from 'graphql';
import { writeAuditEntries } from '../audit/writer.js';
import { loadConfig } from '../config.js';
import { openExistingDatabase } from './database.js';
import { createStore } from '../db/store.js';
import { exportBytes, exportFilter, parseExportRequest, type ExportFormat, type ExportProgress } from '../services/audit-log-export.js';
import { FILTER_PERSONAL_PATHS } from '../services/meta-audit.js';
import { DEFAULT_TENANT } from '../shared/tenant.js';

interface ExportOptions {
  format: string;
  out?: string;
  tenant: string;
  orderBy?: string;
  resource?: string[];
  action?: string[];
  authorId?: string[];
  resourceId?: string;
  transactionId?: string;
  search?: string;
  from?: string;
  to?: string;
}

function operator(): string {
  try {
    return userInfo().username;
  } catch {
    // No account name (some containers): the entry still says it came from the command line.
    return 'unknown';
  }
}

/**
 * `auditql export`: what `GET /export` gives, read straight from the database DATABASE_URL names through the
 * same service (one cursor, batches pulled as the file takes them). `--out` is written beside itself and
 * renamed when complete, so a failed export never leaves a complete-looking file. Recorded like an export
 * over HTTP (resource `audit_log`, action `export`), authored by the operator's account.
 */
export function exportCommand(program: Command): void {
  program
    .command('export')
    .description("write a tenant's entries (or those a filter selects) as CSV, NDJSON or JSON, as GET /export does")
    .option('--format <format>', 'csv, ndjson or json', 'ndjson')
    .option('--out <file>', 'the file to write (default: standard output)')
    .option('--tenant <tenant>', 'whose entries', DEFAULT_TENANT)
    .option('--order-by <order>', 'OLDEST_FIRST (the chain order, default) or NEWEST_FIRST')
    .option('--resource <resource...>', 'only these resources')
    .option('--action <action...>', 'only these actions')
    .option('--author-id <id...>', 'only these authors')
    .option('--resource-id <id>', 'only this record')
    .option('--transaction-id <id>', 'only this transaction')
    .option('--search <text>', 'case-insensitive substring of name, resource, resourceId, action or author name')
    .option('--from <instant>', 'from this ISO-8601 instant (inclusive)')
    .option('--to <instant>', 'until this ISO-8601 instant (exclusive)')
    .action(async (options: ExportOptions, command: Command) => {
      const values = (name: string): string[] => {
        const value = name === 'orderBy' ? options.orderBy : name === 'format' ? options.format : (options as unknown as Record<string, unknown>)[name];
        return value === undefined ? [] : Array.isArray(value) ? value.map(String) : [String(value)];
      };
      let request;
      try {
        request = parseExportRequest(values);
      } catch (error) {
        if (error instanceof GraphQLError) command.error(`error: ${error.message.replace(/filter\.(\w+)/g, '--$1')}`);
        throw error;
      }
      const config = loadConfig();
      const dataSource = await openExistingDatabase(config);
      const store = createStore(dataSource, { ...config.store, readWorkers: 1 });
      const progress: ExportProgress = { rows: 0, complete: false };
      const partial = options.out ? `${options.out}.partial` : undefined;
      try {
        const chunks = exportBytes({ dataSource, store }, exportFilter(request, options.tenant), request.orderBy, request.format as ExportFormat, {}, progress);
        const target: Writable = partial ? createWriteStream(partial, { mode: 0o600 }) : process.stdout;
        await pipeline(Readable.from(chunks, { objectMode: false }), target, { end: partial !== undefined });
        if (partial) renameSync(partial, options.out!);
      } finally {
        if (partial && !progress.complete) rmSync(partial, { force: true });
        const user = operator();
        await dataSource.transaction((manager) =>
          writeAuditEntries(manager, [
            {
              tenantId: options.tenant,
              resource: 'audit_log',
              action: 'export',
              author: { id: `cli:${user}`, name: user, type: 'operator' },
              meta: { operation: 'auditql export', filter: JSON.parse(JSON.stringify({ ...request.filter, orderBy: request.orderBy })) },
              data: { format: request.format, rows: progress.rows, complete: progress.complete },
              personal: FILTER_PERSONAL_PATHS,
            },
          ]),
        );
        await store.close();
        await dataSource.destroy();
      }
      process.stderr.write(`exported ${progress.rows} entries${options.out ? ` to ${options.out}` : ''}\n`);
    });
}
