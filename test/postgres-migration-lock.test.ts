import { afterAll, describe, expect, it } from 'vitest';
import { DataSource } from 'typeorm';
import { migrations } from '../src/db/migrations/index.js';
import { postgresDataSourceOptions } from '../src/db/data-source.js';
import { createPostgresDatabase, servicesAvailable } from './helpers/services.js';

const available = await servicesAvailable('test/postgres-migration-lock.test.ts', 'postgres');

const upTo = (name: string) => migrations.slice(0, migrations.findIndex((m) => m.name === name) + 1);
const before = (name: string) => migrations.slice(0, migrations.findIndex((m) => m.name === name));

/**
 * A migration that fills a rollup and then creates the triggers that keep it, while an older instance is
 * still writing: an entry inserted before the fill and committed after it must be counted (the fill cannot
 * see it, and the new trigger did not exist when it was inserted). The migration has to wait for it.
 */
describe.skipIf(!available)('a rollup migration on PostgreSQL beside a writer that commits during it', () => {
  const dropped: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const drop of dropped) await drop();
  });

  async function writerCommittingDuring(name: string, counted: string): Promise<{ entries: number; rolledUp: number }> {
    const db = await createPostgresDatabase('auditql_migration_lock');
    dropped.push(db.drop);
    const options = postgresDataSourceOptions({ url: db.url, poolSize: 2 });
    const old = await new DataSource({ ...options, migrations: before(name) }).initialize();
    await old.runMigrations({ transaction: 'each' });
    const insert = `INSERT INTO "audit_log" ("tenant_id", "created_at", "resource", "action", "sequence", "hash", "previous_hash", "hash_version")
      VALUES ('default', $1, 'posts', 'update', $2, $3, $3, 1)`;
    for (let i = 1; i <= 3; i++) await old.query(insert, [1_763_800_000_000 + i * 60_000, i, '0'.repeat(64)]);

    // An older instance's transaction: its entry is written (its triggers ran), not yet committed.
    const writer = old.createQueryRunner();
    await writer.startTransaction();
    await writer.query(insert, [1_763_800_000_000 + 4 * 60_000, 4, '0'.repeat(64)]);
    const writerPid = Number((await writer.query(`SELECT pg_backend_pid() AS "pid"`))[0].pid);

    const upgraded = await new DataSource({ ...options, migrations: upTo(name) }).initialize();
    let finished = false;
    const migrated = upgraded.runMigrations({ transaction: 'each' }).finally(() => (finished = true));
    // Either the migration finishes without waiting for the writer, or it waits behind the writer's lock.
    const blocked = (async () => {
      while (!finished) {
        const [row] = await old.query(`SELECT COUNT(*)::int AS "n" FROM pg_locks WHERE NOT "granted" AND "pid" <> $1 AND $1 = ANY(pg_blocking_pids("pid"))`, [writerPid]);
        if (row.n > 0) return;
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    await Promise.race([migrated, blocked]);
    await writer.commitTransaction();
    await writer.release();
    await migrated;

    const [{ entries }] = await upgraded.query(`SELECT COUNT(*)::int AS "entries" FROM "audit_log"`);
    const [{ rolledUp }] = await upgraded.query(`SELECT COALESCE(SUM("entries"), 0)::int AS "rolledUp" FROM ${counted}`);
    await upgraded.destroy();
    await old.destroy();
    return { entries, rolledUp };
  }

  it('counts it in the daily rollup (1763800000201)', async () => {
    expect(await writerCommittingDuring('ActivityDaily1763800000201', `"audit_activity_daily"`)).toEqual({ entries: 4, rolledUp: 4 });
  });

  it('counts it in the per-column rollups (1763800000320)', async () => {
    for (const table of [`"audit_activity_by" WHERE "dimension" = 'action'`, `"audit_activity_daily_by" WHERE "dimension" = 'resource'`]) {
      expect(await writerCommittingDuring('ActivityBy1763800000320', table)).toEqual({ entries: 4, rolledUp: 4 });
    }
  });
});
