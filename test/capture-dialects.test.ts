import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EntitySchema, MoreThan, Table, type DataSource, type MigrationInterface, type QueryRunner } from 'typeorm';
import { AuditLog, withAuditContext, writeAuditEntries } from '../src/typeorm.js';
import { appDatabases } from './helpers/dialects.js';

/**
 * The capture library on an app's own PostgreSQL and MariaDB/MySQL: every write path records its entries
 * in the app's own transaction. The databases come from helpers/dialects.ts, which the shared capture
 * suite can loop over too.
 */
interface Note {
  id: number;
  title: string;
  body: string | null;
  stock: number;
  deletedAt: Date | null;
}

const noteSchema = (dateType: 'timestamp' | 'datetime') =>
  new EntitySchema<Note>({
    name: 'Note',
    tableName: 'note',
    columns: {
      id: { type: 'integer', primary: true, generated: 'increment' },
      title: { type: 'varchar', length: 100, unique: true },
      body: { type: 'text', nullable: true },
      stock: { type: 'integer', default: 0 },
      deletedAt: { type: dateType, name: 'deleted_at', nullable: true, deleteDate: true },
    },
  });

/** The app's own migration for its table, written with TypeORM's schema API like the app's would be. */
const createNotes = (dateType: 'timestamp' | 'datetime') =>
  class CreateNotes1700000000000 implements MigrationInterface {
    name = 'CreateNotes1700000000000';
    async up(queryRunner: QueryRunner) {
      await queryRunner.createTable(
        new Table({
          name: 'note',
          columns: [
            { name: 'id', type: 'integer', isPrimary: true, isGenerated: true, generationStrategy: 'increment' },
            { name: 'title', type: 'varchar', length: '100', isUnique: true },
            { name: 'body', type: 'text', isNullable: true },
            { name: 'stock', type: 'integer', default: 0 },
            { name: 'deleted_at', type: dateType, isNullable: true },
          ],
        }),
      );
    }
    async down(queryRunner: QueryRunner) {
      await queryRunner.dropTable('note');
    }
  };

const dialects = await Promise.all(appDatabases.map(async (database) => ({ database, available: await database.available('test/capture-dialects.test.ts') })));

for (const { database, available } of dialects) {
  describe.skipIf(!available)(`capture on the app's ${database.name}`, () => {
    let ds: DataSource;
    let drop: () => Promise<void>;
    let mark = 0;
    const ann = { author: { id: 'u1', name: 'Ann', type: 'user' }, ip: '10.0.0.1', meta: { requestId: 'r1' } };
    const entries = () => ds.getRepository(AuditLog).find({ where: { id: MoreThan(mark) }, order: { id: 'ASC' } });
    const notes = () => ds.getRepository<Note>('Note');

    beforeAll(async () => {
      const opened = await database.open([noteSchema(database.dateType)], [createNotes(database.dateType)]);
      drop = opened.drop;
      ds = await opened.dataSource.initialize();
      await ds.runMigrations({ transaction: 'each' });
    });
    afterAll(async () => {
      if (ds?.isInitialized) await ds.destroy();
      await drop?.();
    });
    beforeEach(async () => {
      mark = (await ds.getRepository(AuditLog).maximum('id')) ?? 0;
    });

    it('save() creates and updates, attributed to the context, in the same transaction as the change', async () => {
      const note = await withAuditContext(ann, () => notes().save({ title: 'first', body: 'hello' }));
      note.title = 'first, renamed';
      await withAuditContext(ann, () => notes().save(note));
      const list = await entries();
      expect(list.map((e) => [e.resource, e.action, e.resourceId])).toEqual([
        ['note', 'create', String(note.id)],
        ['note', 'update', String(note.id)],
      ]);
      expect(list[0]).toMatchObject({ authorId: 'u1', authorName: 'Ann', ip: '10.0.0.1', meta: { requestId: 'r1' }, data: { title: 'first', body: 'hello', stock: 0 } });
      expect(list[1]).toMatchObject({ previousData: { title: 'first' }, data: { title: 'first, renamed' } });
    });

    it('insert(), update() and delete() by criteria record one full entry per affected row', async () => {
      await notes().insert([{ title: 'c1', stock: 1 }, { title: 'c2', stock: 2 }, { title: 'c3', stock: 3 }]);
      await notes().update({ stock: MoreThan(1) }, { body: 'restocked' });
      await notes().delete({ title: 'c3' });
      const list = await entries();
      expect(list.map((e) => [e.action, (e.data as { title?: string } | null)?.title ?? (e.previousData as { title: string }).title])).toEqual([
        ['create', 'c1'],
        ['create', 'c2'],
        ['create', 'c3'],
        ['update', 'c2'],
        ['update', 'c3'],
        ['delete', 'c3'],
      ]);
      expect(list[3]).toMatchObject({ previousData: { body: null }, data: { body: 'restocked' } });
    });

    it('remove(), softRemove(), recover(), softDelete(), restore() and upsert()', async () => {
      const a = await notes().save({ title: 'soft' });
      const b = await notes().save({ title: 'gone' });
      const removedId = String(b.id); // remove() clears the entity's id
      mark = (await ds.getRepository(AuditLog).maximum('id'))!;
      await notes().softRemove(a);
      await notes().recover(a);
      await notes().softDelete({ id: a.id });
      await notes().restore({ id: a.id });
      await notes().remove(b);
      await notes().upsert({ title: 'soft', stock: 7 }, ['title']);
      await notes().upsert({ title: 'upserted', stock: 1 }, ['title']);
      const list = await entries();
      expect(list.map((e) => [e.action, e.resourceId])).toEqual([
        ['softDelete', String(a.id)],
        ['restore', String(a.id)],
        ['softDelete', String(a.id)],
        ['restore', String(a.id)],
        ['delete', removedId],
        ['update', String(a.id)],
        ['create', expect.any(String)],
      ]);
      expect(list[5]).toMatchObject({ previousData: { stock: 0 }, data: { stock: 7 } });
    });

    it('query-builder insert, update and delete', async () => {
      await ds.createQueryBuilder().insert().into('note').values([{ title: 'qb1' }, { title: 'qb2' }]).execute();
      await ds.createQueryBuilder().update('note').set({ stock: 9 }).where('title IN (:...titles)', { titles: ['qb1', 'qb2'] }).execute();
      await ds.createQueryBuilder().delete().from('note').where('title = :title', { title: 'qb1' }).execute();
      const list = await entries();
      expect(list.map((e) => e.action)).toEqual(['create', 'create', 'update', 'update', 'delete']);
      expect(list.filter((e) => e.action === 'update').every((e) => (e.data as { stock: number }).stock === 9)).toBe(true);
    });

    it('a rolled-back transaction leaves neither the change nor its entries; a committed one shares a transaction id', async () => {
      await ds
        .transaction(async (manager) => {
          await manager.getRepository<Note>('Note').save({ title: 'rolled back' });
          throw new Error('no');
        })
        .catch(() => undefined);
      expect(await notes().findOneBy({ title: 'rolled back' })).toBeNull();
      expect(await entries()).toEqual([]);
      await ds.transaction(async (manager) => {
        await manager.getRepository<Note>('Note').save({ title: 'tx1' });
        await manager.getRepository<Note>('Note').save({ title: 'tx2' });
      });
      const list = await entries();
      expect(list).toHaveLength(2);
      expect(list[0]!.transactionId).toBe(list[1]!.transactionId);
    });

    it('the writer returns the ids the database gave each entry, also with concurrent writers', async () => {
      const written = await Promise.all(
        Array.from({ length: 8 }, (_, t) =>
          ds.transaction((manager) => writeAuditEntries(manager, Array.from({ length: 30 }, (_, i) => ({ resource: 'ids', action: 'create', resourceId: `${t}-${i}`, data: { t, i } })))),
        ),
      );
      const byId = new Map((await ds.getRepository(AuditLog).find({ where: { resource: 'ids' } })).map((e) => [e.id, e]));
      expect(byId.size).toBe(240);
      for (const entry of written.flat()) expect(byId.get(entry.id)?.resourceId).toBe(entry.resourceId);
    });
  });
}
