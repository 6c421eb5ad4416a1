import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { GraphQLError } from 'graphql';
import { configureAuditChain } from '../audit/chain/settings.js';
import { loadConfig } from '../config.js';
import { openExistingDatabase } from './database.js';
import { vacuum } from '../db/secure-delete.js';
import { createStore } from '../db/store.js';
import { eraseActor, type ErasureResult } from '../services/erasure.js';
import type { RecordRef } from '../services/erasure-others.js';
import { badUserInput } from '../shared/errors.js';

function operator(): string {
  try {
    return userInfo().username;
  } catch {
    // No account name (some containers): the entry still says it came from the command line.
    return 'unknown';
  }
}

export interface EraseOptions {
  author: string;
  reason: string;
  /** The person's own records, as `resource:resourceId` (split at the first colon). */
  record?: string[];
  tenant: string;
  /** SQLite: rebuild the file afterwards (VACUUM). @default true */
  vacuum: boolean;
}

/**
 * Erases an author on the database DATABASE_URL names, as `eraseActor` does, recorded as an entry authored
 * by the operator's account. On SQLite it then rebuilds the file (VACUUM), which also removes copies of old
 * values that free space may still hold from before secure deletion was on.
 */
export async function eraseFromCli(options: EraseOptions): Promise<ErasureResult & { vacuumed: boolean }> {
  const records = (options.record ?? []).map(parseRecord);
  const config = loadConfig();
  const dataSource = await openExistingDatabase(config);
  if (config.evidence.personalFields !== undefined) configureAuditChain(dataSource, { personalFields: config.evidence.personalFields });
  const store = createStore(dataSource, { ...config.store, readWorkers: 1, ownsConnection: true });
  try {
    const user = operator();
    const result = await eraseActor(
      {
        dataSource,
        store,
        archiveDir: config.retention.archiveDir,
        onArchiveLockWait: () => process.stderr.write(`waiting for another process to finish rewriting the archives in ${config.retention.archiveDir}\n`),
      },
      {
        tenantId: options.tenant,
        authorId: options.author,
        reason: options.reason,
        records,
        by: { id: `cli:${user}`, name: user, type: 'operator' },
        operation: 'auditql erase',
      },
    );
    const vacuumed = store.dialect === 'sqlite' && options.vacuum ? await vacuum(dataSource, config.store.lockWaitMs) : false;
    return { ...result, storageCleared: result.storageCleared || vacuumed, vacuumed };
  } finally {
    await store.close();
    await dataSource.destroy();
  }
}

/** `users:17` → resource `users`, resourceId `17` (a resource id may hold colons of its own). */
function parseRecord(text: string): RecordRef {
  const colon = text.indexOf(':');
  if (colon <= 0 || colon === text.length - 1) throw badUserInput(`--record takes resource:resourceId (users:17), not ${JSON.stringify(text)}`, 'records');
  return { resource: text.slice(0, colon), resourceId: text.slice(colon + 1) };
}

const collect = (value: string, previous: string[]) => [...previous, value];

/** `auditql erase --author <id> --reason <text>`: GDPR erasure of one author's personal data. */
export function eraseCommand(program: Command): void {
  program
    .command('erase')
    .description("erase an author's personal data from every entry they authored, others' reads that filtered by them and entries about their records (GDPR Art. 17); the chain still verifies")
    .requiredOption('--author <id>', "the author's id, as entries record it")
    .requiredOption('--reason <text>', 'why: a request reference, the legal ground (stored as written: name no one)')
    .option('--record <resource:id>', "one of the person's own records (repeatable): personal values inside entries about it are erased too, whoever wrote them", collect, [])
    .option('--tenant <tenant>', 'the tenant whose entries to erase', 'default')
    .option('--no-vacuum', 'SQLite: do not rebuild the file afterwards (VACUUM holds the write lock while it runs)')
    .action(async (options: EraseOptions) => {
      try {
        const result = await eraseFromCli(options);
        process.stdout.write(
          `erased ${result.erasedEntries} entries of tenant ${options.tenant}` +
            `${result.erasedMentions > 0 ? `, the filter of ${result.erasedMentions} reads of the log that named them` : ''}` +
            `${result.erasedRecordEntries > 0 ? `, ${result.erasedRecordEntries} entries others wrote about the records` : ''}` +
            `${result.recordEntriesLeft > 0 ? ` (${result.recordEntriesLeft} about them left: hashed by an earlier version with one salt)` : ''}` +
            `${result.archiveFiles > 0 ? ` and ${result.erasedArchivedEntries} archived ones (${result.archiveFiles} archive files rewritten)` : ''}` +
            `; the author is now ${result.pseudonym}; recorded as entry ${result.entry.sequence}` +
            `${result.vacuumed ? '; database rebuilt (VACUUM)' : ''}${result.storageCleared ? '' : '; the database files may still hold old bytes (see README, "Erasure")'}\n`,
        );
      } catch (error) {
        // Bad input (an empty reason, a too long id) is a message for the operator, not a stack trace.
        if (error instanceof GraphQLError) {
          process.stderr.write(`${error.message}\n`);
          process.exitCode = 2;
          return;
        }
        throw error;
      }
    });
}
