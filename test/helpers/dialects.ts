import { DataSource, type EntitySchema, type MigrationInterface } from 'typeorm';
import { AuditSubscriber, auditEntities, auditMigrations } from '../../src/typeorm.js';
import { createMariaDatabase, createPostgresDatabase, MARIADB, servicesAvailable } from './services.js';

type Entity = Function | EntitySchema<any>;
type Migration = new () => MigrationInterface;

/**
 * An app's own database, for capture tests that run on every database auditql supports: each opens a
 * fresh database of its own with the app's entities and migrations plus auditql's, and drops it after.
 * The shared capture suite can loop over `appDatabases` the same way test/capture-dialects.test.ts does.
 */
export interface AppDatabase {
  name: string;
  /** Column type for dates on this database (`timestamp` / `datetime`), for the app's own schema. */
  dateType: 'timestamp' | 'datetime';
  available(file: string): Promise<boolean>;
  open(entities: Entity[], migrations: Migration[]): Promise<{ dataSource: DataSource; drop(): Promise<void> }>;
}

export const appDatabases: AppDatabase[] = [
  {
    name: 'PostgreSQL (pg)',
    dateType: 'timestamp',
    available: (file) => servicesAvailable(`${file} (PostgreSQL)`, 'postgres'),
    async open(entities, migrations) {
      const database = await createPostgresDatabase('auditql_capture');
      const dataSource = new DataSource({ type: 'postgres', url: database.url, entities: [...entities, ...auditEntities], migrations: [...migrations, ...auditMigrations], subscribers: [AuditSubscriber] });
      return { dataSource, drop: () => database.drop() };
    },
  },
  {
    name: 'MariaDB (mysql2)',
    dateType: 'datetime',
    available: (file) => servicesAvailable(`${file} (MariaDB)`, 'mariadb'),
    async open(entities, migrations) {
      const database = await createMariaDatabase('auditql_capture');
      const dataSource = new DataSource({
        type: 'mysql',
        host: MARIADB.host,
        port: MARIADB.port,
        username: MARIADB.user,
        database: database.name,
        entities: [...entities, ...auditEntities],
        migrations: [...migrations, ...auditMigrations],
        subscribers: [AuditSubscriber],
      });
      return { dataSource, drop: () => database.drop() };
    },
  },
];
