import type { MigrationInterface, QueryRunner } from 'typeorm';
import { ActivityRollup1763800000003, holdEntryWriters, isSqlite } from './1763800000003-activity-rollup.js';
import { createPostgresHourlyRollup } from './1763800000200-postgres.js';
import { ROLLUP_UNITS, type PerColumnRollup, type RollupColumn } from '../activity-rollups.js';

/**
 * Entry counts per action and per resource, each in one table with the counted column named in `dimension`
 * ('action' or 'resource'), kept like the other rollups: by triggers in the transaction of every insert or
 * delete of entries.
 *
 * - `audit_activity_by`: `start` is the start (ms, UTC) of the quarter hour for actions and of the hour for
 *   resources. Actions (a handful of values) are counted per quarter hour, so that days in zones with 30-
 *   or 45-minute offsets (India, Nepal, parts of Australia) and ranges cut at quarter hours need no entries
 *   for their edges; resources (dozens of values) per hour, which keeps the table small. Keyed by time
 *   before dimension, so the two rows an entry updates sit side by side with the rest of the current hour.
 * - `audit_activity_daily_by`: the same per UTC day (`day`, as in `audit_activity_daily`).
 *
 * The hourly rollup by (action, resource) pairs goes: at 10M entries it is saturated (every hour holds every
 * pair, ~240 rows), so a DAY × 30 chart in Europe/Berlin grouped by action read ~15,000 of its rows at the
 * bucket edges (measured 10–17 ms), where the per-column tables hold 20 or 50 an hour; and a chart or count
 * filtered by both columns counts the few hours at its edges from the entries, over the (tenant, resource,
 * time) index, at about the cost of reading that rollup. So an audited write updates five rollup rows
 * where it updated two (one more leaf page per one-row commit, measured).
 *
 * Nothing happens on MySQL, where charts and counts read the entries.
 */
export class ActivityBy1763800000320 implements MigrationInterface {
  name = 'ActivityBy1763800000320';

  async up(queryRunner: QueryRunner): Promise<void> {
    const sqlite = isSqlite(queryRunner);
    const postgres = queryRunner.connection.options.type === 'postgres';
    if (!sqlite && !postgres) return;
    await holdEntryWriters(queryRunner);
    for (const table of ['audit_activity_by', 'audit_activity_daily_by'] as const) {
      await queryRunner.query(
        `CREATE TABLE "${table}" ("tenant_id" varchar(128) NOT NULL, "${TIME[table]}" bigint NOT NULL, "dimension" varchar(16) NOT NULL, "value" varchar(255) NOT NULL, "entries" integer NOT NULL, PRIMARY KEY ("tenant_id", "${TIME[table]}", "dimension", "value"))${sqlite ? ' WITHOUT ROWID' : ''}`,
      );
    }
    // Hours and days from the rollups already there (complete, and far smaller); quarter hours from the entries.
    await queryRunner.query(
      `INSERT INTO "audit_activity_by" SELECT "tenant_id", "hour", 'resource', "resource", SUM("entries") FROM "audit_activity_hourly" GROUP BY "tenant_id", "hour", "resource"`,
    );
    await queryRunner.query(
      `INSERT INTO "audit_activity_by" SELECT "tenant_id", ${key('', 'audit_activity_by', 'action')}, 'action', "action", COUNT(*) FROM "audit_log" GROUP BY 1, 2, 4`,
    );
    for (const column of ['action', 'resource']) {
      await queryRunner.query(
        `INSERT INTO "audit_activity_daily_by" SELECT "tenant_id", "day", '${column}', "${column}", SUM("entries") FROM "audit_activity_daily" GROUP BY "tenant_id", "day", "${column}"`,
      );
    }
    if (sqlite) {
      await queryRunner.query(`DROP TRIGGER "audit_activity_on_delete"`);
      await queryRunner.query(`DROP TRIGGER "audit_activity_on_insert"`);
      await queryRunner.query(`DROP TABLE "audit_activity_hourly"`);
      const decrement = (table: PerColumnRollup) =>
        COLUMNS.map(
          (column) =>
            `UPDATE "${table}" SET "entries" = "entries" - 1 WHERE "tenant_id" = OLD."tenant_id" AND "${TIME[table]}" = ${key('OLD.', table, column)} AND "dimension" = '${column}' AND "value" = OLD."${column}";`,
        ).join('\n         ');
      await queryRunner.query(activityByInsertTrigger());
      await queryRunner.query(
        `CREATE TRIGGER "audit_activity_by_on_delete" AFTER DELETE ON "audit_log" BEGIN
         ${decrement('audit_activity_by')}
         ${decrement('audit_activity_daily_by')}
       END`,
      );
      return;
    }
    await queryRunner.query(`DROP TRIGGER "audit_activity_on_delete" ON "audit_log"`);
    await queryRunner.query(`DROP TRIGGER "audit_activity_on_insert" ON "audit_log"`);
    await queryRunner.query(`DROP FUNCTION "audit_activity_on_delete"()`);
    await queryRunner.query(`DROP FUNCTION "audit_activity_on_insert"()`);
    await queryRunner.query(`DROP TABLE "audit_activity_hourly"`);
    // Statement-level on PostgreSQL: each statement's rows counted per key, one upsert or update per key.
    const grouped = (source: string, table: PerColumnRollup) =>
      COLUMNS.map(
        (column) => `SELECT "tenant_id", ${key('', table, column)} AS "at", '${column}' AS "dimension", "${column}" AS "value", COUNT(*) AS "n" FROM "${source}" GROUP BY 1, 2, 4`,
      ).join(' UNION ALL ');
    const add = (table: PerColumnRollup) =>
      `INSERT INTO "${table}" ("tenant_id", "${TIME[table]}", "dimension", "value", "entries")
       SELECT "tenant_id", "at", "dimension", "value", "n" FROM (${grouped('inserted', table)}) c ORDER BY 1, 2, 3, 4
       ON CONFLICT ("tenant_id", "${TIME[table]}", "dimension", "value") DO UPDATE SET "entries" = "${table}"."entries" + excluded."entries";`;
    const subtract = (table: PerColumnRollup) =>
      `UPDATE "${table}" r SET "entries" = r."entries" - d."n" FROM (${grouped('deleted', table)}) d
       WHERE r."tenant_id" = d."tenant_id" AND r."${TIME[table]}" = d."at" AND r."dimension" = d."dimension" AND r."value" = d."value";`;
    for (const [name, statement] of [['audit_activity_by_on_insert', add], ['audit_activity_by_on_delete', subtract]] as const) {
      await queryRunner.query(`CREATE FUNCTION "${name}"() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
        BEGIN
          ${statement('audit_activity_by')}
          ${statement('audit_activity_daily_by')}
          RETURN NULL;
        END $$`);
    }
    await queryRunner.query(
      `CREATE TRIGGER "audit_activity_by_on_insert" AFTER INSERT ON "audit_log" REFERENCING NEW TABLE AS "inserted" FOR EACH STATEMENT EXECUTE FUNCTION "audit_activity_by_on_insert"()`,
    );
    await queryRunner.query(
      `CREATE TRIGGER "audit_activity_by_on_delete" AFTER DELETE ON "audit_log" REFERENCING OLD TABLE AS "deleted" FOR EACH STATEMENT EXECUTE FUNCTION "audit_activity_by_on_delete"()`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const sqlite = isSqlite(queryRunner);
    const postgres = queryRunner.connection.options.type === 'postgres';
    if (!sqlite && !postgres) return;
    await queryRunner.query(`DROP TRIGGER "audit_activity_by_on_delete"${postgres ? ' ON "audit_log"' : ''}`);
    await queryRunner.query(`DROP TRIGGER "audit_activity_by_on_insert"${postgres ? ' ON "audit_log"' : ''}`);
    if (postgres) {
      await queryRunner.query(`DROP FUNCTION "audit_activity_by_on_delete"()`);
      await queryRunner.query(`DROP FUNCTION "audit_activity_by_on_insert"()`);
    }
    await queryRunner.query(`DROP TABLE "audit_activity_daily_by"`);
    await queryRunner.query(`DROP TABLE "audit_activity_by"`);
    if (sqlite) await new ActivityRollup1763800000003().up(queryRunner);
    else await createPostgresHourlyRollup(queryRunner);
  }
}

const COLUMNS: RollupColumn[] = ['action', 'resource'];
/** Each table's time column. */
const TIME: Record<PerColumnRollup, string> = { audit_activity_by: 'start', audit_activity_daily_by: 'day' };
/** The key an entry's `column` is counted under in `table` (`prefix`: NEW. or OLD. in a row trigger). */
const key = (prefix: string, table: PerColumnRollup, column: RollupColumn) =>
  `${prefix}"created_at" - ${prefix}"created_at" % ${ROLLUP_UNITS[table][column]}`;

/** SQLite's per-row insert trigger of the per-column rollups (replaced by the writer in 1763800000330). */
export function activityByInsertTrigger(): string {
  const upsert = (table: PerColumnRollup) =>
    `INSERT INTO "${table}" VALUES
           ${COLUMNS.map((column) => `(NEW."tenant_id", ${key('NEW.', table, column)}, '${column}', NEW."${column}", 1)`).join(',\n           ')}
         ON CONFLICT ("tenant_id", "${TIME[table]}", "dimension", "value") DO UPDATE SET "entries" = "entries" + 1;`;
  return `CREATE TRIGGER "audit_activity_by_on_insert" AFTER INSERT ON "audit_log" BEGIN
         ${upsert('audit_activity_by')}
         ${upsert('audit_activity_daily_by')}
       END`;
}
