import type { MigrationInterface, QueryRunner } from 'typeorm';
import { holdEntryWriters, isSqlite } from './1763800000003-activity-rollup.js';

/**
 * Daily entry counts per (tenant, UTC day, action, resource), beside the hourly rollup and kept the same
 * way: by triggers in the transaction of every insert or delete of entries (per row on SQLite, per
 * statement on PostgreSQL). `day` is the UTC midnight, in ms, that starts the day.
 *
 * Why: at 10M entries the hourly rollup is saturated (every hour holds every action × resource pair), so a
 * 30-day chart sums 720 × 250 rows (measured 30–60 ms). A day in a time zone other than UTC is not a UTC
 * day, so the chart combines the two: the UTC days a bucket covers from this table, the hours between a
 * bucket's edge and the nearest UTC midnight from the hourly one, added or subtracted
 * (services/rollup-ranges.ts). Costs one more upsert per written entry.
 *
 * Nothing happens on MySQL, where charts and counts read the entries.
 */
export class ActivityDaily1763800000201 implements MigrationInterface {
  name = 'ActivityDaily1763800000201';

  async up(queryRunner: QueryRunner): Promise<void> {
    const sqlite = isSqlite(queryRunner);
    const postgres = queryRunner.connection.options.type === 'postgres';
    if (!sqlite && !postgres) return;
    await holdEntryWriters(queryRunner);
    await queryRunner.query(
      `CREATE TABLE "audit_activity_daily" ("tenant_id" varchar(128) NOT NULL, "day" bigint NOT NULL, "action" varchar(64) NOT NULL, "resource" varchar(255) NOT NULL, "entries" integer NOT NULL, PRIMARY KEY ("tenant_id", "day", "action", "resource"))${sqlite ? ' WITHOUT ROWID' : ''}`,
    );
    // From the hourly rollup (already complete), not from the entries: a few hundred thousand rows at most.
    await queryRunner.query(
      `INSERT INTO "audit_activity_daily" SELECT "tenant_id", "hour" - "hour" % 86400000, "action", "resource", SUM("entries") FROM "audit_activity_hourly" GROUP BY 1, 2, 3, 4`,
    );
    if (sqlite) {
      await queryRunner.query(dailyInsertTrigger());
      await queryRunner.query(
        `CREATE TRIGGER "audit_activity_daily_on_delete" AFTER DELETE ON "audit_log" BEGIN
           UPDATE "audit_activity_daily" SET "entries" = "entries" - 1
           WHERE "tenant_id" = OLD."tenant_id" AND "day" = OLD."created_at" - OLD."created_at" % 86400000 AND "action" = OLD."action" AND "resource" = OLD."resource";
         END`,
      );
      return;
    }
    await queryRunner.query(`CREATE FUNCTION "audit_activity_daily_on_insert"() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
      BEGIN
        INSERT INTO "audit_activity_daily" ("tenant_id", "day", "action", "resource", "entries")
        SELECT "tenant_id", "created_at" - "created_at" % 86400000, "action", "resource", COUNT(*) FROM "inserted" GROUP BY 1, 2, 3, 4
        ORDER BY 1, 2, 3, 4
        ON CONFLICT ("tenant_id", "day", "action", "resource") DO UPDATE SET "entries" = "audit_activity_daily"."entries" + excluded."entries";
        RETURN NULL;
      END $$`);
    await queryRunner.query(`CREATE FUNCTION "audit_activity_daily_on_delete"() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
      BEGIN
        UPDATE "audit_activity_daily" r SET "entries" = r."entries" - d."n"
        FROM (SELECT "tenant_id", "created_at" - "created_at" % 86400000 AS "day", "action", "resource", COUNT(*) AS "n" FROM "deleted" GROUP BY 1, 2, 3, 4) d
        WHERE r."tenant_id" = d."tenant_id" AND r."day" = d."day" AND r."action" = d."action" AND r."resource" = d."resource";
        RETURN NULL;
      END $$`);
    await queryRunner.query(
      `CREATE TRIGGER "audit_activity_daily_on_insert" AFTER INSERT ON "audit_log" REFERENCING NEW TABLE AS "inserted" FOR EACH STATEMENT EXECUTE FUNCTION "audit_activity_daily_on_insert"()`,
    );
    await queryRunner.query(
      `CREATE TRIGGER "audit_activity_daily_on_delete" AFTER DELETE ON "audit_log" REFERENCING OLD TABLE AS "deleted" FOR EACH STATEMENT EXECUTE FUNCTION "audit_activity_daily_on_delete"()`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const sqlite = isSqlite(queryRunner);
    const postgres = queryRunner.connection.options.type === 'postgres';
    if (!sqlite && !postgres) return;
    await queryRunner.query(`DROP TRIGGER "audit_activity_daily_on_delete"${postgres ? ' ON "audit_log"' : ''}`);
    await queryRunner.query(`DROP TRIGGER "audit_activity_daily_on_insert"${postgres ? ' ON "audit_log"' : ''}`);
    if (postgres) {
      await queryRunner.query(`DROP FUNCTION "audit_activity_daily_on_delete"()`);
      await queryRunner.query(`DROP FUNCTION "audit_activity_daily_on_insert"()`);
    }
    await queryRunner.query(`DROP TABLE "audit_activity_daily"`);
  }
}

/** SQLite's per-row insert trigger of the daily rollup (replaced by the writer in 1763800000330). */
export function dailyInsertTrigger(): string {
  return `CREATE TRIGGER "audit_activity_daily_on_insert" AFTER INSERT ON "audit_log" BEGIN
           INSERT INTO "audit_activity_daily" VALUES (NEW."tenant_id", NEW."created_at" - NEW."created_at" % 86400000, NEW."action", NEW."resource", 1)
           ON CONFLICT ("tenant_id", "day", "action", "resource") DO UPDATE SET "entries" = "entries" + 1;
         END`;
}
