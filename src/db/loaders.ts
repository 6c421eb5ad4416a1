import DataLoader from 'dataloader';
import type { DataSource } from 'typeorm';
import { AuditLog } from './entities/audit-log.entity.js';
import { statement } from './sql.js';
import { hydrate, type AuditStore, type ReadOptions } from './store.js';

export interface Loaders {
  /** Entries by id within the request's tenant; `null` for unknown ids and other tenants' entries. */
  auditLogById: DataLoader<number, AuditLog | null>;
}

/** Per request, so that nothing is cached across callers (or tenants). */
export function createLoaders(dataSource: DataSource, store: AuditStore, tenantId: string, reads: ReadOptions): Loaders {
  return {
    auditLogById: new DataLoader(async (ids) => {
      const marks = ids.map(() => '?').join(', ');
      const rows = await store.read(statement(`SELECT * FROM "audit_log" WHERE "tenant_id" = ? AND "id" IN (${marks})`, [tenantId, ...ids]), reads);
      const byId = new Map(hydrate<AuditLog>(dataSource, dataSource.getMetadata(AuditLog), rows).map((row) => [row.id, row]));
      return ids.map((id) => byId.get(id) ?? null);
    }),
  };
}
