import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { loadConfig } from './src/config.js';
import { postgresDataSourceOptions, sqliteDataSourceOptions } from './src/db/data-source.js';

/**
 * THE DataSource options: used by the server (src/main.ts), the TypeORM CLI
 * (`npx typeorm-ts-node-esm -d ormconfig.ts migration:show`) and the tests, so they cannot drift apart.
 */
const config = loadConfig();
export const options =
  config.dialect === 'postgres' ? postgresDataSourceOptions({ url: config.database, poolSize: config.poolSize }) : sqliteDataSourceOptions({ database: config.database, synchronous: config.sqliteSynchronous });
export default new DataSource(options);
