import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { DataSource, type DataSourceOptions, type MigrationInterface, type NamingStrategyInterface } from 'typeorm';
import type { Dialect } from './shapes.js';

export interface OpenOptions {
  entities: Array<new () => object>;
  subscribers?: Array<new () => object>;
  migrations?: Array<new () => MigrationInterface>;
  namingStrategy?: NamingStrategyInterface;
}

export interface OpenDatabase {
  dataSource: DataSource;
  /** Destroys the DataSource and removes its database. */
  drop(): Promise<void>;
}

/**
 * Where the capture suite runs: each `open` gives a DataSource on a new, empty database of its own (a file
 * for SQLite, a database for PostgreSQL and MariaDB), so tests never share state.
 */
export interface TestDatabases {
  dialect: Dialect;
  label: string;
  open(options: OpenOptions): Promise<OpenDatabase>;
}

/** SQLite files through `better-sqlite3` (TypeORM 1.x) or `sqlite3` (what many TypeORM 0.3 apps use). */
export function sqliteDatabases(type: 'better-sqlite3' | 'sqlite', label: string): TestDatabases {
  return {
    dialect: 'sqlite',
    label,
    async open(options) {
      const dir = mkdtempSync(join(tmpdir(), 'auditql-shapes-'));
      const dataSource = new DataSource({ type, database: join(dir, 'db.sqlite'), ...options } as DataSourceOptions);
      await dataSource.initialize();
      return {
        dataSource,
        async drop() {
          if (dataSource.isInitialized) await dataSource.destroy();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  };
}

/**
 * A server database (PostgreSQL or MariaDB): every `open` creates a database named for it and drops it after.
 * Returns undefined when the server cannot be reached, so that the caller can skip visibly.
 */
export async function serverDatabases(kind: 'postgres' | 'mariadb'): Promise<TestDatabases | undefined> {
  const base =
    kind === 'postgres'
      ? ({ type: 'postgres', host: '127.0.0.1', port: 5432, username: 'postgres', database: 'test' } as const)
      : ({ type: 'mariadb', host: '127.0.0.1', port: 3306, username: 'root', password: '', database: 'test' } as const);
  try {
    const admin = new DataSource(base as DataSourceOptions); // throws when the driver package is missing
    await admin.initialize();
    await admin.destroy();
  } catch {
    return undefined;
  }
  const quote = (name: string) => (kind === 'postgres' ? `"${name}"` : `\`${name}\``);
  return {
    dialect: kind === 'postgres' ? 'postgres' : 'mysql',
    label: kind === 'postgres' ? 'PostgreSQL' : 'MariaDB',
    async open(options) {
      const name = `auditql_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
      const server = new DataSource(base as DataSourceOptions);
      await server.initialize();
      await server.query(`CREATE DATABASE ${quote(name)}`);
      const dataSource = new DataSource({ ...base, database: name, ...options } as DataSourceOptions);
      await dataSource.initialize();
      return {
        dataSource,
        async drop() {
          if (dataSource.isInitialized) await dataSource.destroy();
          await server.query(`DROP DATABASE IF EXISTS ${quote(name)}`);
          await server.destroy();
        },
      };
    },
  };
}
