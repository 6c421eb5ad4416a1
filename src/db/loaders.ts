import DataLoader from 'dataloader';
import { In, type DataSource } from 'typeorm';
import { AuditLog } from './entities/audit-log.entity.js';
import { read } from './transaction.js';

export interface Loaders {
  /** Entries by id within the request's tenant; `null` for unknown ids and other tenants' entries. */
  auditLogById: DataLoader<number, AuditLog | null>;
}

/** Per request, so that nothing is cached across callers (or tenants). */
export function createLoaders(dataSource: DataSource, tenantId: string): Loaders {
  return {
    auditLogById: new DataLoader(async (ids) => {
      const rows = await read(dataSource, (manager) => manager.find(AuditLog, { where: { id: In([...ids]), tenantId } }));
      const byId = new Map(rows.map((row) => [row.id, row]));
      return ids.map((id) => byId.get(id) ?? null);
    }),
  };
}
