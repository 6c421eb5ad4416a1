import { existsSync } from 'node:fs';
import type { DataSource } from 'typeorm';
import { ConfigError, type Config } from '../config.js';
import { createServerDataSource, openDatabase } from '../db/data-source.js';

/**
 * The database of a command that works on an existing log (retention, export, erase): a SQLite file that
 * does not exist is a mistyped DATABASE_URL, not a log to start, so it is refused rather than created
 * empty (with a new signing key beside it) and reported as "nothing to do".
 */
export function openExistingDatabase(config: Config): Promise<DataSource> {
  if (config.dialect === 'sqlite' && config.database !== ':memory:' && !existsSync(config.database)) {
    throw new ConfigError(`no database at ${config.database} (DATABASE_URL); the server creates it on its first start`);
  }
  return openDatabase(createServerDataSource(config));
}
