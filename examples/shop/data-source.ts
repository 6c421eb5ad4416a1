import { DataSource } from 'typeorm';
import { auditEntities, auditMigrations, AuditSubscriber } from '../../src/index.js';
import { Customer, Order, OrderLine, Product } from './entities/index.js';
import { CreateShop1763900000000 } from './migrations/1763900000000-create-shop.js';

/** The shop's own DataSource. The three `audit` lines are all that auditing adds to it. */
export function createShopDataSource(database: string): DataSource {
  return new DataSource({
    type: 'better-sqlite3',
    database,
    entities: [Customer, Product, Order, OrderLine, ...auditEntities], // audit: its entities
    migrations: [CreateShop1763900000000, ...auditMigrations], // audit: its migrations
    subscribers: [AuditSubscriber], // audit: capture every change
    prepareDatabase: (db: { pragma: (sql: string) => unknown }) => {
      if (database !== ':memory:') db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
    },
  });
}
