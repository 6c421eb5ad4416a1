import type { DataSource, ObjectLiteral } from 'typeorm';
import { AuditLog } from '../../src/db/entities/audit-log.entity.js';
import { appendToChain } from '../../src/audit/chain/append.js';
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
  const personal = nameRuleMatcher([]);
  for (let i = 0; i < entities.length; i += 200) {
    const chunk = entities.slice(i, i + 200);
    await dataSource.transaction((manager) =>
      appendToChain(manager, chunk.map((e) => ({ ...e, createdAt: e.createdAt.getTime() })), personal, async (m, linked) => {
        linked.forEach((link, k) => Object.assign(chunk[k]!, { sequence: link.sequence, hash: link.hash, previousHash: link.previousHash, hashVersion: link.hashVersion, salt: link.salt }));
        await m.createQueryBuilder().insert().into(AuditLog).values(chunk as ObjectLiteral[]).execute();
      }),
    );
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
