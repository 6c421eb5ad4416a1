import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { loadConfig } from './src/config.js';
import { sqliteDataSourceOptions } from './src/db/data-source.js';

/**
 * The server's DataSource for TypeORM's own CLI, on the database DATABASE_URL names — the same options the
 * server opens it with (src/db/data-source.ts), so they cannot drift apart:
 *
 *   npm run migration:show       # which migrations are applied
 *   npm run typeorm -- migration:revert -d ormconfig.ts
 *
 * (`auditql migrate` and every server start apply pending migrations themselves.)
 */
const config = loadConfig();
export const options = sqliteDataSourceOptions({ database: config.database, synchronous: config.sqliteSynchronous });
export default new DataSource(options);
