import Database from 'better-sqlite3';
import type { DataSource, ObjectLiteral } from 'typeorm';
import { AuditLog } from '../../src/db/entities/audit-log.entity.js';
import { insertEntries } from '../../src/audit/writer.js';
import { dialectOf, runAsync, runSync } from '../../src/db/sql.js';
import { nameRuleMatcher } from '../../src/shared/chain/personal.js';

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

/**
 * Inserts rows with chosen timestamps straight into the real database (the API always stamps "now"), with
 * their place in the chain, as the writer gives it.
 */
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
      redactedChanges: null,
      recordedBy: null,
      createdAt: row.createdAt,
    }),
  );
  const chain = { chained: true, personal: nameRuleMatcher([]) };
  for (let i = 0; i < entities.length; i += 200) {
    const chunk = entities.slice(i, i + 200);
    await dataSource.transaction((manager) => runAsync(manager, insertEntries(dialectOf(dataSource), chunk, chain, { keepTimes: true })));
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
  const chain = { chained: true, personal: nameRuleMatcher([]) };
  const start = Date.UTC(2026, 0, 1);
  try {
    for (let from = 0; from < count; from += 5000) {
      const rows = Array.from({ length: Math.min(5000, count - from) }, (_, k) => {
        const i = from + k;
        const values = {
          tenant_id: 'default',
          resource: `resource-${i % 50}`,
          resource_id: String(i % 5000),
          action: ['create', 'update', 'delete'][i % 3],
          name: `Entry number ${i}`,
          author_id: `u${i % 1000}`,
          author_name: `Author ${i % 1000}`,
          created_at: start + i * 20_000,
          ...make(i),
        } as Record<string, unknown>;
        return Object.assign(new AuditLog(), {
          tenantId: values.tenant_id,
          resource: values.resource,
          resourceId: values.resource_id,
          action: values.action,
          name: values.name,
          authorId: values.author_id,
          authorName: values.author_name,
          authorType: 'user',
          data: null,
          previousData: null,
          meta: null,
          ip: null,
          userAgent: null,
          transactionId: null,
          idempotencyKey: null,
          redactedChanges: null,
          recordedBy: null,
          createdAt: new Date(values.created_at as number),
        });
      });
      db.transaction(() => runSync(db, insertEntries('sqlite', rows, chain)))();
    }
  } finally {
    db.close();
  }
}
