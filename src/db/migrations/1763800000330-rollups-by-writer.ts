import type { MigrationInterface, QueryRunner } from 'typeorm';
import { isSqlite } from './1763800000003-activity-rollup.js';
import { dailyInsertTrigger } from './1763800000201-activity-daily.js';
import { activityByInsertTrigger } from './1763800000320-activity-by.js';

/**
 * On SQLite the entries' writer adds them to the rollups itself, one upsert per distinct key of a write
 * (db/activity-rollups.ts `rollupIncrements`), in the transaction that inserts them; the per-row insert
 * triggers go. SQLite has no statement-level triggers, and the per-row ones did five upserts for every
 * entry: measured, a quarter of what auditing adds to a bulk `save()` of 10,000 entities.
 *
 * Deletes (retention, hand edits) are still counted by their triggers, and PostgreSQL keeps its
 * statement-level triggers, which already count a statement's entries per key. The writer is the only
 * path that inserts entries (every insert needs its place in the chain); rows put in the file by other
 * means are not entries and are not counted.
 */
export class RollupsByWriter1763800000330 implements MigrationInterface {
  name = 'RollupsByWriter1763800000330';

  async up(queryRunner: QueryRunner): Promise<void> {
    if (!isSqlite(queryRunner)) return;
    await queryRunner.query(`DROP TRIGGER "audit_activity_by_on_insert"`);
    await queryRunner.query(`DROP TRIGGER "audit_activity_daily_on_insert"`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    if (!isSqlite(queryRunner)) return;
    await queryRunner.query(activityByInsertTrigger());
    await queryRunner.query(dailyInsertTrigger());
  }
}
