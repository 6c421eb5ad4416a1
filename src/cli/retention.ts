import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { chainSettings } from '../audit/chain/settings.js';
import { createGroupCommit, type TenantDraft } from '../audit/group-commit.js';
import { nextTimestamp } from '../audit/writer.js';
import { loadConfig, parseDatabaseUrl, type Config } from '../config.js';
import { openExistingDatabase } from './database.js';
import { createStore } from '../db/store.js';
import { toEntries } from '../services/audit-log-query.js';
import { loadCheckpointKey, storedCheckpointKey } from '../services/checkpoint-key.js';
import { purgeExpired, type PurgeResult } from '../services/retention.js';

function operator(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

export function describePurge(result: PurgeResult): string {
  const archives = result.archives.length > 0 ? `, archived in ${result.archives.length} file${result.archives.length === 1 ? '' : 's'}` : '';
  const removed =
    result.count > 0
      ? `removed ${result.count} entries older than ${new Date(result.before).toISOString()} (sequence ${result.fromSequence}–${result.toSequence})${archives}; the chain now starts after ${result.anchorSequence}`
      : 'nothing removed';
  const erased = result.erasedInArchives ? `; ${result.erasedInArchives} archived entries erased meanwhile (an erasure reached them while they were being archived)` : '';
  return `${result.tenant}: ${removed}${erased}${result.error ? `; stopped: ${result.error}` : ''}`;
}

/**
 * `auditql retention`: removes expired entries now, as the server's schedule does (README, "Retention"), from
 * the database DATABASE_URL names; safe beside a running server (writes queue on the database's lock, and a
 * purge that finds its anchor moved by another one stops).
 */
export function retentionCommand(program: Command): void {
  program
    .command('retention')
    .description('remove entries older than the retention policy (RETENTION_DAYS, or the tenant\'s own), re-anchoring each chain')
    .option('--database <url>', 'the database (default: DATABASE_URL)')
    .option('--tenant <tenant...>', 'only these tenants (default: every tenant)')
    .option('--days <days>', 'the global limit for this run (default: RETENTION_DAYS); tenants with a policy of their own keep it')
    .option('--archive-dir <dir>', 'archive removed entries here first (default: RETENTION_ARCHIVE_DIR)')
    .action(async (options: { database?: string; tenant?: string[]; days?: string; archiveDir?: string }) => {
      const loaded = loadConfig();
      const config: Config = options.database ? { ...loaded, ...parseDatabaseUrl(options.database) } : loaded;
      const days = options.days === undefined ? config.retention.days : Number(options.days);
      if (!Number.isInteger(days) || days < 0) throw new Error(`--days: a whole number of days (0: keep forever), got "${options.days}"`);
      const dataSource = await openExistingDatabase(config);
      // On PostgreSQL the servers sign with the configured key or, without one, with the key they keep in
      // the database (cli/serve.ts): the anchors a purge writes must verify with theirs.
      const privateKey = config.evidence.checkpointPrivateKey ?? (config.dialect === 'postgres' ? await storedCheckpointKey(dataSource, false) : undefined);
      if (config.dialect === 'postgres' && !privateKey) {
        await dataSource.destroy();
        throw new Error('on PostgreSQL, set CHECKPOINT_PRIVATE_KEY (the key the servers sign with), or start a server once to make one: the anchors a purge writes must verify later');
      }
      const store = createStore(dataSource, { ...config.store, ownsConnection: true });
      try {
        const checkpointKey = loadCheckpointKey({ privateKey, previousKeys: config.evidence.checkpointPreviousKeys, database: config.dialect === 'sqlite' ? config.database : undefined }, { info: () => undefined, warn: (...args: unknown[]) => void process.stderr.write(`${String(args.at(-1))}\n`) });
        const commit = createGroupCommit({ store, clock: () => nextTimestamp(dataSource), toEntries: (rows) => toEntries({ dataSource }, rows), chain: () => chainSettings(dataSource), publish: () => undefined });
        const record = async (draft: TenantDraft) => (await commit([draft]))[0]!;
        const user = operator();
        const results = await purgeExpired(
          { dataSource, store, checkpointKey, record },
          { days, archiveDir: options.archiveDir ?? config.retention.archiveDir },
          {
            tenants: options.tenant,
            author: { id: `cli:${user}`, name: user, type: 'operator' },
            operation: 'auditql retention',
            onArchiveLockWait: () => process.stderr.write('waiting for another process to finish rewriting the archives\n'),
          },
        );
        for (const result of results) process.stdout.write(`${describePurge(result)}\n`);
        if (results.length === 0) process.stdout.write('nothing has expired\n');
        if (results.some((r) => r.error)) process.exitCode = 1;
      } finally {
        await store.close();
        await dataSource.destroy();
      }
    });
}
