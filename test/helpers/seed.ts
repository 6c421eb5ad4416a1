import Database from 'better-sqlite3';
import type { DataSource, ObjectLiteral } from 'typeorm';
import { AuditLog } from '../../src/db/entities/audit-log.entity.js';

export interface SeedRow {
  resource: string;
  action: string;
  resourceId?: string | null;
  name?: string | null;
  authorId?: string | null;
  authorName?: string | null;
  createdAt: Date;
  tenantId?: string;
}

/** Inserts rows with chosen timestamps straight into the real database (the API always stamps "now"). */
export async function seed(dataSource: DataSource, rows: SeedRow[]): Promise<AuditLog[]> {
  const entities = rows.map((row) =>
    Object.assign(new AuditLog(), {
      tenantId: row.tenantId ?? 'default',
      resource: row.resource,
      action: row.action,
      resourceId: row.resourceId ?? null,
      name: row.name ?? null,
      authorId: row.authorId ?? null,
      authorName: row.authorName ?? null,
      authorType: row.authorId ? 'user' : null,
      data: null,
      previousData: null,
      meta: null,
      ip: null,
      userAgent: null,
      transactionId: null,
      idempotencyKey: null,
      createdAt: row.createdAt,
    }),
  );
  for (let i = 0; i < entities.length; i += 200) {
    await dataSource.createQueryBuilder().insert().into(AuditLog).values(entities.slice(i, i + 200) as ObjectLiteral[]).execute();
  }
  return entities;
}

/** A small deterministic PRNG so that generated data is the same on every run. */
export function random(seedValue: number) {
  let state = seedValue >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/**
 * Inserts `count` generated entries straight into the SQLite file in one transaction of its own
 * connection: hundreds of thousands in seconds, for tests that need a database heavy enough to be slow.
 */
export function seedBulk(file: string, count: number, make: (i: number) => Partial<Record<string, unknown>> = () => ({})): void {
  const db = new Database(file);
  try {
    const insert = db.prepare(
      `INSERT INTO audit_log (tenant_id, resource, resource_id, action, name, author_id, author_name, author_type, created_at)
       VALUES (@tenant_id, @resource, @resource_id, @action, @name, @author_id, @author_name, 'user', @created_at)`,
    );
    const start = Date.UTC(2026, 0, 1);
    db.transaction(() => {
      for (let i = 0; i < count; i++) {
        insert.run({
          tenant_id: 'default',
          resource: `resource-${i % 50}`,
          resource_id: String(i % 5000),
          action: ['create', 'update', 'delete'][i % 3],
          name: `Entry number ${i}`,
          author_id: `u${i % 1000}`,
          author_name: `Author ${i % 1000}`,
          created_at: start + i * 20_000,
          ...make(i),
        });
      }
    })();
  } finally {
    db.close();
  }
}
