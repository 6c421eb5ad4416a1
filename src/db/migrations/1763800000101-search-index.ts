import type { MigrationInterface, QueryRunner } from 'typeorm';
import { isSqlite } from './1763800000003-activity-rollup.js';

/**
 * The substring-search index (SQLite only; PostgreSQL will get pg_trgm): an FTS5 table with the trigram
 * tokenizer over the five searched fields, keyed by entry id. It stores no copy of the text
 * (`content=''`) and accepts deletes by id (`contentless_delete=1`, SQLite 3.43+), so retention and
 * erasure can remove or re-index an entry.
 *
 * No trigger keeps it: an FTS5 write inside every small transaction doubles the cost of an audited write
 * (measured). A background indexer (src/db/search-index.ts) adds entries in batches and records the last
 * id it indexed in `audit_log_search_state`; a search reads the index for entries up to that id and scans
 * the few entries after it. It starts empty and catches up in the background.
 *
 * An SQLite built without FTS5, or older than 3.43, gets neither table: search then scans, as before.
 */
export class SearchIndex1763800000101 implements MigrationInterface {
  name = 'SearchIndex1763800000101';

  async up(queryRunner: QueryRunner): Promise<void> {
    if (!isSqlite(queryRunner) || !(await supportsSearchIndex(queryRunner))) return;
    await queryRunner.query(
      `CREATE VIRTUAL TABLE "audit_log_search" USING fts5("name", "resource", "resource_id", "action", "author_name", content='', contentless_delete=1, tokenize='trigram')`,
    );
    await queryRunner.query(`CREATE TABLE "audit_log_search_state" ("id" integer PRIMARY KEY CHECK ("id" = 1), "indexed_through" integer NOT NULL)`);
    await queryRunner.query(`INSERT INTO "audit_log_search_state" ("id", "indexed_through") VALUES (1, 0)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    if (!isSqlite(queryRunner)) return;
    await queryRunner.query(`DROP TABLE IF EXISTS "audit_log_search_state"`);
    await queryRunner.query(`DROP TABLE IF EXISTS "audit_log_search"`);
  }
}

async function supportsSearchIndex(queryRunner: QueryRunner): Promise<boolean> {
  const [row] = (await queryRunner.query('SELECT sqlite_version() AS version')) as Array<{ version: string }>;
  const [major = 0, minor = 0] = (row?.version ?? '0').split('.').map(Number);
  if (major < 3 || (major === 3 && minor < 43)) return false;
  const [options] = (await queryRunner.query(`SELECT sqlite_compileoption_used('ENABLE_FTS5') AS fts5`)) as Array<{ fts5: number }>;
  return options?.fts5 === 1;
}
