import { Table, TableColumn, TableIndex, type MigrationInterface, type QueryRunner } from 'typeorm';
import { GENESIS_HASH } from '../../shared/chain/canonical.js';
import { linkEntries, type ChainHead } from '../../shared/chain/link.js';
import { DEFAULT_PERSONAL_FIELDS, nameRuleMatcher } from '../../shared/chain/personal.js';
import { personalPathsColumn } from '../../shared/chain/rows.js';
import type { JsonValue } from '../../shared/json.js';
import { isSqlite } from './1763800000003-activity-rollup.js';

const BATCH = 500;

/**
 * The tamper-evident chain (README, "Evidence"): per tenant a gapless `sequence` and a `hash` over the
 * entry's canonical facts and the previous hash; each tenant's head in `audit_chain_head` (updated in the
 * same transaction as the entries); signed checkpoints in `audit_checkpoint`. Entries already stored are
 * chained here, per tenant in id order, with the default personal-field rules, and their JSON values
 * rewritten in the canonical (JCS) form.
 */
export class Chain1763800000004 implements MigrationInterface {
  name = 'Chain1763800000004';

  async up(queryRunner: QueryRunner): Promise<void> {
    const sqlite = isSqlite(queryRunner);
    const columns = [
      new TableColumn({ name: 'sequence', type: 'bigint', isNullable: true }),
      new TableColumn({ name: 'hash', type: 'varchar', length: '64', isNullable: true }),
      new TableColumn({ name: 'previous_hash', type: 'varchar', length: '64', isNullable: true }),
      new TableColumn({ name: 'hash_version', type: 'integer', isNullable: true }),
      new TableColumn({ name: 'salt', type: 'varchar', length: '32', isNullable: true }),
      new TableColumn({ name: 'personal_paths', type: 'text', isNullable: true }),
      new TableColumn({ name: 'erased_digests', type: 'text', isNullable: true }),
    ];
    if (sqlite) {
      // Plain ALTER TABLE: TypeORM's SQLite addColumn copies the table into a new one, which would drop the
      // rollup triggers on audit_log.
      for (const column of columns) await queryRunner.query(`ALTER TABLE "audit_log" ADD COLUMN "${column.name}" ${column.type}${column.length ? `(${column.length})` : ''}`);
    } else {
      await queryRunner.addColumns('audit_log', columns);
    }
    await queryRunner.createTable(
      new Table({
        name: 'audit_chain_head',
        columns: [
          { name: 'tenant_id', type: 'varchar', length: '128', isPrimary: true },
          { name: 'sequence', type: 'bigint' },
          { name: 'hash', type: 'varchar', length: '64' },
          // Where the tenant's chain starts: retention moves it past the entries it removes.
          { name: 'anchor_sequence', type: 'bigint', default: '0' },
          { name: 'anchor_hash', type: 'varchar', length: '64', default: `'${GENESIS_HASH}'` },
        ],
      }),
    );
    await queryRunner.createTable(
      new Table({
        name: 'audit_checkpoint',
        columns: [
          { name: 'id', type: 'integer', isPrimary: true, isGenerated: true, generationStrategy: 'increment' },
          { name: 'tenant_id', type: 'varchar', length: '128' },
          { name: 'sequence', type: 'bigint' },
          { name: 'hash', type: 'varchar', length: '64' },
          { name: 'created_at', type: 'bigint' },
          { name: 'key_id', type: 'varchar', length: '64' },
          { name: 'jws', type: 'text' },
        ],
        indices: [{ name: 'idx_audit_checkpoint_tenant_sequence', columnNames: ['tenant_id', 'sequence'] }],
      }),
    );
    await chainExistingEntries(queryRunner);
    await queryRunner.createIndex('audit_log', new TableIndex({ name: 'idx_audit_log_tenant_sequence', columnNames: ['tenant_id', 'sequence'], isUnique: true }));
    if (sqlite) {
      // A write path that forgot the chain fails loudly instead of leaving a hole no verifier could explain.
      await queryRunner.query(
        `CREATE TRIGGER "audit_log_chained" BEFORE INSERT ON "audit_log" WHEN NEW."sequence" IS NULL OR NEW."hash" IS NULL OR NEW."previous_hash" IS NULL OR NEW."hash_version" IS NULL
         BEGIN SELECT RAISE(ABORT, 'audit_log entries need a place in the chain: write them with writeAuditEntries'); END`,
      );
    }
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    if (isSqlite(queryRunner)) await queryRunner.query(`DROP TRIGGER IF EXISTS "audit_log_chained"`);
    await queryRunner.dropIndex('audit_log', 'idx_audit_log_tenant_sequence');
    await queryRunner.dropTable('audit_checkpoint');
    await queryRunner.dropTable('audit_chain_head');
    for (const name of ['erased_digests', 'personal_paths', 'salt', 'hash_version', 'previous_hash', 'hash', 'sequence']) {
      if (isSqlite(queryRunner)) await queryRunner.query(`ALTER TABLE "audit_log" DROP COLUMN "${name}"`);
      else await queryRunner.dropColumn('audit_log', name);
    }
  }
}

interface StoredRow {
  id: number | string;
  tenant_id: string;
  created_at: number | string;
  resource: string;
  resource_id: string | null;
  action: string;
  author_id: string | null;
  author_name: string | null;
  author_type: string | null;
  data: string | null;
  previous_data: string | null;
  meta: string | null;
  ip: string | null;
  user_agent: string | null;
  transaction_id: string | null;
  idempotency_key: string | null;
  redacted_changes: string | null;
  recorded_by: string | null;
}

const json = (text: string | null, id: number | string, column: string): JsonValue | null => {
  if (text === null) return null;
  try {
    return JSON.parse(text) as JsonValue;
  } catch {
    throw new Error(`audit_log entry ${id}: ${column} is not JSON; fix or remove it before chaining`);
  }
};

async function chainExistingEntries(queryRunner: QueryRunner): Promise<void> {
  const postgres = queryRunner.connection.options.type === 'postgres';
  const p = (n: number) => (postgres ? `$${n}` : '?');
  // The statements below quote names the ANSI way; MySQL and MariaDB quote with backticks.
  const mysql = !postgres && !isSqlite(queryRunner);
  const q = (sql: string) => (mysql ? sql.replace(/"/g, '`') : sql);
  const personal = nameRuleMatcher(DEFAULT_PERSONAL_FIELDS);
  const tenants = (await queryRunner.query(q(`SELECT DISTINCT "tenant_id" FROM "audit_log"`))) as Array<{ tenant_id: string }>;
  for (const { tenant_id: tenant } of tenants) {
    let head: ChainHead = { sequence: 0, hash: GENESIS_HASH };
    let lastId: number | string = -1;
    for (;;) {
      const rows = (await queryRunner.query(
        q(`SELECT "id", "tenant_id", "created_at", "resource", "resource_id", "action", "author_id", "author_name", "author_type", "data", "previous_data", "meta", "ip", "user_agent", "transaction_id", "idempotency_key", "redacted_changes", "recorded_by"
         FROM "audit_log" WHERE "tenant_id" = ${p(1)} AND "id" > ${p(2)} ORDER BY "id" LIMIT ${BATCH}`),
        [tenant, lastId],
      )) as StoredRow[];
      if (rows.length === 0) break;
      const linked = linkEntries(
        new Map([[tenant, head]]),
        rows.map((row) => ({
          tenantId: row.tenant_id,
          createdAt: Number(row.created_at),
          resource: row.resource,
          resourceId: row.resource_id,
          action: row.action,
          authorId: row.author_id,
          authorName: row.author_name,
          authorType: row.author_type,
          data: json(row.data, row.id, 'data'),
          previousData: json(row.previous_data, row.id, 'previous_data'),
          meta: json(row.meta, row.id, 'meta'),
          ip: row.ip,
          userAgent: row.user_agent,
          transactionId: row.transaction_id,
          idempotencyKey: row.idempotency_key,
          redactedChanges: json(row.redacted_changes, row.id, 'redacted_changes') as string[] | null,
          recordedBy: row.recorded_by,
        })),
        personal,
      );
      for (const [i, row] of linked.rows.entries()) {
        await queryRunner.query(
          q(`UPDATE "audit_log" SET "sequence" = ${p(1)}, "hash" = ${p(2)}, "previous_hash" = ${p(3)}, "hash_version" = ${p(4)}, "salt" = ${p(5)}, "personal_paths" = ${p(6)}, "data" = ${p(7)}, "previous_data" = ${p(8)}, "meta" = ${p(9)} WHERE "id" = ${p(10)}`),
          [row.sequence, row.hash, row.previousHash, row.hashVersion, row.salt, personalPathsColumn(row.personalPaths), row.data, row.previousData, row.meta, rows[i]!.id],
        );
      }
      head = linked.heads.get(tenant)!;
      lastId = rows[rows.length - 1]!.id;
    }
    await queryRunner.query(q(`INSERT INTO "audit_chain_head" ("tenant_id", "sequence", "hash") VALUES (${p(1)}, ${p(2)}, ${p(3)})`), [tenant, head.sequence, head.hash]);
  }
}
