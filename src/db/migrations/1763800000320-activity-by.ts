import type { MigrationInterface, QueryRunner } from 'typeorm';
import { isSqlite } from './1763800000003-activity-rollup.js';

/**
 * Entry counts per action and per resource, in one table with the counted column named in `dimension`
 * ('action' or 'resource'), kept like the other rollups: by triggers in the transaction of every insert or
 * delete of entries. `start` is the start (ms, UTC) of the quarter hour for actions and of the hour for
 * resources.
 *
 * Why: the hourly rollup by (action, resource) is saturated at 10M entries (every hour holds every pair,
 * ~240 rows), and a chart in a zone that is not UTC reads a few hours of it at every bucket edge: a DAY × 30
 * chart in Europe/Berlin grouped by action read ~15,000 rows and grouped them (measured 10–17 ms). Charts and
 * counts that filter or group by one of the two columns read 20 or 50 rows an hour here instead. Actions
 * (a handful of values) are counted per quarter hour, so that days in zones with 30- or 45-minute offsets
 * (India, Nepal, parts of Australia) and ranges cut at quarter hours need no entries for their edges;
 * resources (dozens of values) per hour, which keeps the table small.
 *
 * One table, keyed by time before dimension: the two rows an entry updates sit side by side with the rest of
 * the current hour, so a one-entry commit writes one more leaf page, not two. Nothing happens on MySQL, where
 * charts and counts read the entries.
 */
export class ActivityBy1763800000320 implements MigrationInterface {
  name = 'ActivityBy1763800000320';

  async up(queryRunner: QueryRunner): Promise<void> {
    const sqlite = isSqlite(queryRunner);
    const postgres = queryRunner.connection.options.type === 'postgres';
    if (!sqlite && !postgres) return;
    await queryRunner.query(
      `CREATE TABLE "audit_activity_by" ("tenant_id" varchar(128) NOT NULL, "start" bigint NOT NULL, "dimension" varchar(16) NOT NULL, "value" varchar(255) NOT NULL, "entries" integer NOT NULL, PRIMARY KEY ("tenant_id", "start", "dimension", "value"))${sqlite ? ' WITHOUT ROWID' : ''}`,
    );
    // Resources from the hourly rollup (complete, and far smaller); actions per quarter hour from the entries.
    await queryRunner.query(
      `INSERT INTO "audit_activity_by" SELECT "tenant_id", "hour", 'resource', "resource", SUM("entries") FROM "audit_activity_hourly" GROUP BY "tenant_id", "hour", "resource"`,
    );
    await queryRunner.query(
      `INSERT INTO "audit_activity_by" SELECT "tenant_id", "created_at" - "created_at" % 900000, 'action', "action", COUNT(*) FROM "audit_log" GROUP BY 1, 2, 4`,
    );
    if (sqlite) {
      await queryRunner.query(
        `CREATE TRIGGER "audit_activity_by_on_insert" AFTER INSERT ON "audit_log" BEGIN
           INSERT INTO "audit_activity_by" VALUES
             (NEW."tenant_id", NEW."created_at" - NEW."created_at" % 900000, 'action', NEW."action", 1),
             (NEW."tenant_id", NEW."created_at" - NEW."created_at" % 3600000, 'resource', NEW."resource", 1)
           ON CONFLICT ("tenant_id", "start", "dimension", "value") DO UPDATE SET "entries" = "entries" + 1;
         END`,
      );
      await queryRunner.query(
        `CREATE TRIGGER "audit_activity_by_on_delete" AFTER DELETE ON "audit_log" BEGIN
           UPDATE "audit_activity_by" SET "entries" = "entries" - 1
           WHERE "tenant_id" = OLD."tenant_id" AND "start" = OLD."created_at" - OLD."created_at" % 900000 AND "dimension" = 'action' AND "value" = OLD."action";
           UPDATE "audit_activity_by" SET "entries" = "entries" - 1
           WHERE "tenant_id" = OLD."tenant_id" AND "start" = OLD."created_at" - OLD."created_at" % 3600000 AND "dimension" = 'resource' AND "value" = OLD."resource";
         END`,
      );
      return;
    }
    const grouped = (source: string) =>
      `SELECT "tenant_id", "created_at" - "created_at" % 900000 AS "start", 'action' AS "dimension", "action" AS "value", COUNT(*) AS "n" FROM "${source}" GROUP BY 1, 2, 4 ` +
      `UNION ALL SELECT "tenant_id", "created_at" - "created_at" % 3600000, 'resource', "resource", COUNT(*) FROM "${source}" GROUP BY 1, 2, 4`;
    await queryRunner.query(`CREATE FUNCTION "audit_activity_by_on_insert"() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
      BEGIN
        INSERT INTO "audit_activity_by" ("tenant_id", "start", "dimension", "value", "entries")
        SELECT "tenant_id", "start", "dimension", "value", "n" FROM (${grouped('inserted')}) c
        ORDER BY 1, 2, 3, 4
        ON CONFLICT ("tenant_id", "start", "dimension", "value") DO UPDATE SET "entries" = "audit_activity_by"."entries" + excluded."entries";
        RETURN NULL;
      END $$`);
    await queryRunner.query(`CREATE FUNCTION "audit_activity_by_on_delete"() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
      BEGIN
        UPDATE "audit_activity_by" r SET "entries" = r."entries" - d."n"
        FROM (${grouped('deleted')}) d
        WHERE r."tenant_id" = d."tenant_id" AND r."start" = d."start" AND r."dimension" = d."dimension" AND r."value" = d."value";
        RETURN NULL;
      END $$`);
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
    await queryRunner.query(`DROP TABLE "audit_activity_by"`);
  }
}
