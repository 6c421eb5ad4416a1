import 'reflect-metadata';
import { afterAll, describe, expect, it } from 'vitest';
import { Column, DataSource, Entity, PrimaryColumn } from 'typeorm';
import { AuditLog, auditMigrations, createAuditSubscriber } from '../src/index.js';
import { createPostgresDatabase, servicesAvailable } from './helpers/services.js';
import { unreadableLegacyCodes } from './helpers/legacy-codes.js';

/**
 * On PostgreSQL a failed statement aborts the transaction, so the before-image reads run in savepoints of
 * their own. Two writes of one transaction running concurrently (Promise.all on one manager) must not fall
 * into each other's savepoint: a read that could not be used once rolled back the other write, which the app
 * had been told succeeded.
 */
const postgres = await servicesAvailable('test/capture-guarded-reads.test.ts', 'postgres');

@Entity({ name: 'ledger' })
class Ledger {
  @PrimaryColumn({ type: 'integer' }) id!: number;
  @Column({ type: 'varchar', length: 64 }) label!: string;
  // Old rows hold values the app can no longer read: its transformer throws for them.
  @Column({ type: 'varchar', length: 64, transformer: unreadableLegacyCodes }) code!: string;
}

describe.skipIf(!postgres)('before-image reads on PostgreSQL, concurrent in one transaction', () => {
  let database: Awaited<ReturnType<typeof createPostgresDatabase>>;
  let ds: DataSource;
  afterAll(async () => {
    await ds?.destroy();
    await database?.drop();
  });

  it('an unreadable row leaves the other write of the transaction in place, and is recorded as partial', async () => {
    database = await createPostgresDatabase();
    ds = new DataSource({ type: 'postgres', url: database.url, entities: [Ledger, AuditLog], migrations: auditMigrations, subscribers: [createAuditSubscriber()] });
    await ds.initialize();
    await ds.runMigrations();
    await ds.synchronize();
    // One turn of the event loop and the next: the second write's read starts while the first one runs.
    const later = () => new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve)));
    for (let round = 0; round < 10; round++) {
      await ds.query(`DELETE FROM ledger`);
      await ds.query(`INSERT INTO ledger (id, label, code) VALUES (1, 'a', 'legacy:1'), (2, 'b', 'B')`);
      const [second, first] = await ds.transaction((manager) =>
        Promise.all([manager.update(Ledger, { id: 2 }, { label: `b${round}` }), later().then(() => manager.update(Ledger, { id: 1 }, { label: `a${round}` }))]),
      );
      expect([second.affected, first.affected]).toEqual([1, 1]);
      expect(await ds.query(`SELECT id, label FROM ledger ORDER BY id`)).toEqual([
        { id: 1, label: `a${round}` },
        { id: 2, label: `b${round}` },
      ]);
    }
    const last = (await ds.getRepository(AuditLog).find({ order: { id: 'DESC' }, take: 2 })).reverse();
    expect(last.map((entry) => [entry.resourceId, Boolean(entry.meta && 'auditCapture' in (entry.meta as object))])).toEqual(
      expect.arrayContaining([
        ['2', false],
        [null, true],
      ]),
    );
  });
});
