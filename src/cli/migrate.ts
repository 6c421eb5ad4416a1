import type { Command } from 'commander';
import { loadConfig } from '../config.js';
import { createServerDataSource, withMigrationLock } from '../db/data-source.js';

/** `auditql migrate`: applies pending migrations and says which (the server also does this on start). */
export function migrateCommand(program: Command): void {
  program
    .command('migrate')
    .description('apply pending database migrations to DATABASE_URL (the server also applies them on start)')
    .action(async () => {
      const config = loadConfig();
      const dataSource = await createServerDataSource(config).initialize();
      try {
        const applied = await withMigrationLock(dataSource, () => dataSource.runMigrations({ transaction: 'each' }));
        process.stdout.write(applied.length === 0 ? 'the database is up to date\n' : applied.map((m) => `applied ${m.name}\n`).join(''));
      } finally {
        await dataSource.destroy();
      }
    });
}
