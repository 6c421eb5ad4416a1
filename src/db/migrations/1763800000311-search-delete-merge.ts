import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * SQLite's search index stops merging its segments because rows were deleted from it (FTS5 `deletemerge`
 * 0). By default, once a tenth of a segment's rows are deleted, the next delete merges that segment there
 * and then: at a million entries that made one purge batch of a thousand rows take seconds, holding the
 * writer (and with it the server) for that long. Segments still merge as new entries are indexed, and an
 * erasure merges them on purpose, in short steps, to drop the erased terms (README, "Erasure").
 */
export class SearchDeleteMerge1763800000311 implements MigrationInterface {
  name = 'SearchDeleteMerge1763800000311';

  async up(queryRunner: QueryRunner): Promise<void> {
    if (!(await hasSearchIndex(queryRunner))) return;
    await queryRunner.query(`INSERT INTO "audit_log_search" ("audit_log_search", "rank") VALUES ('deletemerge', 0)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    if (!(await hasSearchIndex(queryRunner))) return;
    await queryRunner.query(`INSERT INTO "audit_log_search" ("audit_log_search", "rank") VALUES ('deletemerge', 10)`);
  }
}

async function hasSearchIndex(queryRunner: QueryRunner): Promise<boolean> {
  const type: string = queryRunner.connection.options.type;
  if (type !== 'better-sqlite3' && type !== 'sqlite') return false;
  const rows = (await queryRunner.query(`SELECT 1 FROM "sqlite_master" WHERE "type" = 'table' AND "name" = 'audit_log_search'`)) as unknown[];
  return rows.length > 0;
}
