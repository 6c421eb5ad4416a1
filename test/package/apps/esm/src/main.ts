// An ES module app: decorators compiled by the app's own TypeScript, auditql imported by name.
import 'reflect-metadata';
import { Column, DataSource, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { AuditLog, AuditSubscriber, auditEntities, auditMigrations, withAuditContext } from 'auditql';
import { AuditSubscriber as FromTypeorm } from 'auditql/typeorm';
import { createAuditServer } from 'auditql/server';

@Entity()
class Book {
  @PrimaryGeneratedColumn()
  id!: number;

  @Column()
  title!: string;
}

const dataSource = new DataSource({
  type: 'better-sqlite3',
  database: ':memory:',
  entities: [Book, ...auditEntities],
  migrations: [...auditMigrations],
  migrationsRun: true,
  subscribers: [AuditSubscriber],
});
await dataSource.initialize();
// The app's own table, as its own migration would create it.
await dataSource.query('CREATE TABLE "book" ("id" INTEGER PRIMARY KEY AUTOINCREMENT, "title" varchar NOT NULL)');
await withAuditContext({ author: { id: 'u1', name: 'Ada' } }, () => dataSource.getRepository(Book).save({ title: 'Dune' }));
const entry = await dataSource.getRepository(AuditLog).findOneByOrFail({ resource: 'book' });
console.log(
  JSON.stringify({
    action: entry.action,
    author: entry.authorId,
    data: entry.data,
    sameSubscriber: FromTypeorm === AuditSubscriber,
    server: typeof createAuditServer,
    urlPattern: typeof (globalThis as { URLPattern?: unknown }).URLPattern,
  }),
);
await dataSource.destroy();
