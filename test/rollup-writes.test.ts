import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DataSource } from 'typeorm';
import { createSqliteDataSource, openDatabase } from '../src/db/data-source.js';
import { seed, type SeedRow } from './helpers/seed.js';
import { RollupsByWriter1763800000330 } from '../src/db/migrations/1763800000330-rollups-by-writer.js';

const QUARTER = 900_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 2, 1);

/** Each rollup table as the writer keeps it, and the same counts taken from the entries. */
const TABLES = [
  ['audit_activity_by', `SELECT "tenant_id", "start" AS "t", "dimension" AS "a", "value" AS "b", "entries" FROM "audit_activity_by"`,
    `SELECT "tenant_id", "created_at" - "created_at" % ${QUARTER} AS "t", 'action' AS "a", "action" AS "b", COUNT(*) AS "entries" FROM "audit_log" GROUP BY 1, 2, 4
     UNION ALL SELECT "tenant_id", "created_at" - "created_at" % ${HOUR}, 'resource', "resource", COUNT(*) FROM "audit_log" GROUP BY 1, 2, 4`],
  ['audit_activity_daily_by', `SELECT "tenant_id", "day" AS "t", "dimension" AS "a", "value" AS "b", "entries" FROM "audit_activity_daily_by"`,
    `SELECT "tenant_id", "created_at" - "created_at" % ${DAY} AS "t", 'action' AS "a", "action" AS "b", COUNT(*) AS "entries" FROM "audit_log" GROUP BY 1, 2, 4
     UNION ALL SELECT "tenant_id", "created_at" - "created_at" % ${DAY}, 'resource', "resource", COUNT(*) FROM "audit_log" GROUP BY 1, 2, 4`],
  ['audit_activity_daily', `SELECT "tenant_id", "day" AS "t", "action" AS "a", "resource" AS "b", "entries" FROM "audit_activity_daily"`,
    `SELECT "tenant_id", "created_at" - "created_at" % ${DAY} AS "t", "action" AS "a", "resource" AS "b", COUNT(*) AS "entries" FROM "audit_log" GROUP BY 1, 2, 3, 4`],
] as const;

let dir: string;
let dataSource: DataSource;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'auditql-rollup-writes-'));
  dataSource = await openDatabase(createSqliteDataSource({ database: join(dir, 'audit.sqlite') }));
});

afterAll(async () => {
  await dataSource.destroy();
  rmSync(dir, { recursive: true, force: true });
});

async function expectRollupsMatchEntries() {
  for (const [table, kept, fromEntries] of TABLES) {
    const sorted = async (sql: string) =>
      ((await dataSource.query(`SELECT * FROM (${sql}) WHERE "entries" > 0 ORDER BY 1, 2, 3, 4`)) as unknown[]).map((row) => JSON.stringify(row));
    expect(await sorted(kept), table).toEqual(await sorted(fromEntries));
  }
}

describe('rollups counted by the writer (SQLite)', () => {
  it('counts runs of entries that share every key, and the entries where a key changes', async () => {
    // Writes of 200 (the seed's transactions) whose entries come in runs: the same tenant, action and
    // resource for a while, across quarter-hour, hour and day boundaries and back, as bulk saves write them.
    // From one run to the next exactly one of tenant, action and resource changes (a Gray code).
    const rows: SeedRow[] = [];
    for (let i = 0; i < 1500; i++) {
      const run = Math.floor(i / 37);
      const gray = run ^ (run >> 1);
      rows.push({
        tenantId: gray & 4 ? 'other' : 'default',
        action: gray & 2 ? 'update' : 'create',
        resource: gray & 1 ? 'users' : 'orders',
        createdAt: new Date(T0 - 3 * QUARTER + i * 61_000 - (run % 7 === 6 ? DAY : 0)),
      });
    }
    await seed(dataSource, rows);
    await expectRollupsMatchEntries();
    // A write of one entry, and the same key again in the next write.
    await seed(dataSource, [{ tenantId: 'default', action: 'create', resource: 'orders', createdAt: new Date(T0) }]);
    await seed(dataSource, [{ tenantId: 'default', action: 'create', resource: 'orders', createdAt: new Date(T0) }]);
    await expectRollupsMatchEntries();
    // Deletes are still counted by the triggers.
    await dataSource.query(`DELETE FROM "audit_log" WHERE "id" % 3 = 0`);
    await expectRollupsMatchEntries();
  });

  it('has no per-row insert triggers left on the entries, and gets them back when the migration is undone', async () => {
    const triggers = async () =>
      ((await dataSource.query(`SELECT "name" FROM "sqlite_master" WHERE "type" = 'trigger' AND "tbl_name" = 'audit_log' ORDER BY 1`)) as Array<{ name: string }>).map((t) => t.name);
    expect(await triggers()).toEqual(['audit_activity_by_on_delete', 'audit_activity_daily_on_delete', 'audit_log_chained']);
    const runner = dataSource.createQueryRunner();
    try {
      await new RollupsByWriter1763800000330().down(runner);
      expect(await triggers()).toEqual(['audit_activity_by_on_delete', 'audit_activity_by_on_insert', 'audit_activity_daily_on_delete', 'audit_activity_daily_on_insert', 'audit_log_chained']);
      // What the version before counted by its triggers: a raw insert reaches every rollup.
      await dataSource.query(
        `INSERT INTO "audit_log" ("tenant_id", "resource", "action", "created_at", "sequence", "hash", "previous_hash", "hash_version") VALUES ('rollback', 'r', 'a', ?, 1, 'x', 'x', 1)`,
        [T0],
      );
      await expectRollupsMatchEntries();
      await new RollupsByWriter1763800000330().up(runner);
      expect(await triggers()).toEqual(['audit_activity_by_on_delete', 'audit_activity_daily_on_delete', 'audit_log_chained']);
    } finally {
      await runner.release();
    }
  });
});
