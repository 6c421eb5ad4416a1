import type { DataSource, ObjectLiteral } from 'typeorm';
import { AuditLog } from '../../src/db/entities/audit-log.entity.js';
import type { JsonValue } from '../../src/shared/json.js';

export interface HistoryRow {
  resource: string;
  action: string;
  resourceId: string;
  name: string;
  author: { id: string; name: string };
  createdAt: Date;
  previousData: JsonValue | null;
  data: JsonValue | null;
}

const AUTHORS = [
  { id: 'u-alice', name: 'Alice Martin' },
  { id: 'u-bob', name: 'Bob Chen' },
  { id: 'u-carol', name: 'Carol Diaz' },
];
const RESOURCES = ['posts', 'orders', 'customers'] as const;
const ACTIONS = ['create', 'update', 'update', 'delete'] as const;

/**
 * A week of history, made deterministically (no randomness): `count` entries spread over the last six
 * days, oldest first. Inserted straight into the real database because the API always stamps "now".
 */
export function history(count: number, now = Date.now()): HistoryRow[] {
  const span = 6 * 86_400_000;
  return Array.from({ length: count }, (_, i) => {
    const resource = RESOURCES[i % RESOURCES.length]!;
    const action = ACTIONS[(i * 7) % ACTIONS.length]!;
    const id = String(100 + i);
    const before = { title: `${resource} ${id}`, status: 'draft', total: i * 3 };
    const after = { title: `${resource} ${id}`, status: i % 2 ? 'published' : 'archived', total: i * 3 + 1 };
    return {
      resource,
      action,
      resourceId: id,
      name: `${action === 'create' ? 'Created' : action === 'delete' ? 'Deleted' : 'Updated'} ${resource.slice(0, -1)} ${id}`,
      author: AUTHORS[(i * 5) % AUTHORS.length]!,
      // Denser towards now, like real activity.
      createdAt: new Date(now - span + Math.round(span * Math.sqrt((i + 1) / count)) - 60_000),
      previousData: action === 'create' ? null : before,
      data: action === 'delete' ? null : action === 'create' ? before : after,
    };
  });
}

export async function insertHistory(dataSource: DataSource, rows: HistoryRow[]): Promise<void> {
  const entities = rows.map((row) =>
    Object.assign(new AuditLog(), {
      tenantId: 'default',
      resource: row.resource,
      action: row.action,
      resourceId: row.resourceId,
      name: row.name,
      authorId: row.author.id,
      authorName: row.author.name,
      authorType: 'user',
      data: row.data,
      previousData: row.previousData,
      meta: null,
      ip: '203.0.113.7',
      userAgent: 'backoffice/2.4',
      transactionId: null,
      idempotencyKey: null,
      createdAt: row.createdAt,
    }),
  );
  for (let i = 0; i < entities.length; i += 200) {
    await dataSource.createQueryBuilder().insert().into(AuditLog).values(entities.slice(i, i + 200) as ObjectLiteral[]).execute();
  }
}
