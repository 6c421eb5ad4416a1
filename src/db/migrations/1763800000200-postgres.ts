import type { MigrationInterface, QueryRunner } from 'typeorm';
import { postgresSearchExpression } from '../postgres/search.js';

/**
 * What PostgreSQL needs beyond the shared tables:
 *
 * - `search`: one pg_trgm GIN index over the searched columns (see postgres/search.ts). A GIN index is
 *   transactional, so an entry is searchable the moment it commits.
 * - `data` and `meta` stay text, the exact bytes the writer stored (jsonb would reorder keys, drop duplicate
 *   ones and rewrite numbers, so what is read back could differ from what was written and hashed); GIN
 *   indexes over their jsonb reading (`jsonb_path_ops`) answer containment filters (`meta::jsonb @> …`).
 * - The hourly rollup of the activity chart, as on SQLite, kept by statement-level triggers in the same
 *   transaction as every insert or delete of entries (one upsert per statement, not per row).
 *
 * Nothing happens on other databases.
 */
export class Postgres1763800000200 implements MigrationInterface {
  name = 'Postgres1763800000200';

  async up(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.options.type !== 'postgres') return;
    // pg_trgm is a trusted extension (PostgreSQL 13+): a role that may create objects in the database may create it.
    await queryRunner.query(`CREATE EXTENSION IF NOT EXISTS pg_trgm`);
    await queryRunner.query(`CREATE INDEX "idx_audit_log_search" ON "audit_log" USING gin ((${postgresSearchExpression((c) => `"${c}"`)}) gin_trgm_ops)`);
    await queryRunner.query(`CREATE INDEX "idx_audit_log_meta" ON "audit_log" USING gin (("meta"::jsonb) jsonb_path_ops)`);
    await queryRunner.query(`CREATE INDEX "idx_audit_log_data" ON "audit_log" USING gin (("data"::jsonb) jsonb_path_ops)`);

    await createPostgresHourlyRollup(queryRunner);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.options.type !== 'postgres') return;
    await queryRunner.query(`DROP TRIGGER "audit_activity_on_delete" ON "audit_log"`);
    await queryRunner.query(`DROP TRIGGER "audit_activity_on_insert" ON "audit_log"`);
    await queryRunner.query(`DROP FUNCTION "audit_activity_on_delete"()`);
    await queryRunner.query(`DROP FUNCTION "audit_activity_on_insert"()`);
    await queryRunner.query(`DROP TABLE "audit_activity_hourly"`);
    await queryRunner.query(`DROP INDEX "idx_audit_log_data"`);
    await queryRunner.query(`DROP INDEX "idx_audit_log_meta"`);
    await queryRunner.query(`DROP INDEX "idx_audit_log_search"`);
  }
}

/**
 * The hourly rollup by (action, resource) on PostgreSQL, as this migration made it. Dropped again by
 * 1763800000320-activity-by.ts, whose `down` puts it back through this function.
 */
export async function createPostgresHourlyRollup(queryRunner: QueryRunner): Promise<void> {
  await queryRunner.query(
    `CREATE TABLE "audit_activity_hourly" ("tenant_id" varchar(128) NOT NULL, "hour" bigint NOT NULL, "action" varchar(64) NOT NULL, "resource" varchar(255) NOT NULL, "entries" integer NOT NULL, PRIMARY KEY ("tenant_id", "hour", "action", "resource"))`,
  );
  await queryRunner.query(
    `INSERT INTO "audit_activity_hourly" SELECT "tenant_id", "created_at" - "created_at" % 3600000, "action", "resource", COUNT(*) FROM "audit_log" GROUP BY 1, 2, 3, 4`,
  );
  // SECURITY DEFINER (with the search_path of this migration): a role that may insert entries keeps the
  // rollup without being granted the rollup table, which is the server's business, not the app's.
  await queryRunner.query(`CREATE FUNCTION "audit_activity_on_insert"() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
    BEGIN
      INSERT INTO "audit_activity_hourly" ("tenant_id", "hour", "action", "resource", "entries")
      SELECT "tenant_id", "created_at" - "created_at" % 3600000, "action", "resource", COUNT(*) FROM "inserted" GROUP BY 1, 2, 3, 4
      ORDER BY 1, 2, 3, 4
      ON CONFLICT ("tenant_id", "hour", "action", "resource") DO UPDATE SET "entries" = "audit_activity_hourly"."entries" + excluded."entries";
      RETURN NULL;
    END $$`);
  await queryRunner.query(`CREATE FUNCTION "audit_activity_on_delete"() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
    BEGIN
      UPDATE "audit_activity_hourly" r SET "entries" = r."entries" - d."n"
      FROM (SELECT "tenant_id", "created_at" - "created_at" % 3600000 AS "hour", "action", "resource", COUNT(*) AS "n" FROM "deleted" GROUP BY 1, 2, 3, 4) d
      WHERE r."tenant_id" = d."tenant_id" AND r."hour" = d."hour" AND r."action" = d."action" AND r."resource" = d."resource";
      RETURN NULL;
    END $$`);
  await queryRunner.query(
    `CREATE TRIGGER "audit_activity_on_insert" AFTER INSERT ON "audit_log" REFERENCING NEW TABLE AS "inserted" FOR EACH STATEMENT EXECUTE FUNCTION "audit_activity_on_insert"()`,
  );
  await queryRunner.query(
    `CREATE TRIGGER "audit_activity_on_delete" AFTER DELETE ON "audit_log" REFERENCING OLD TABLE AS "deleted" FOR EACH STATEMENT EXECUTE FUNCTION "audit_activity_on_delete"()`,
  );
}
