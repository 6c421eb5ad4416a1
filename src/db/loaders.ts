import DataLoader from 'dataloader';
import type { DataSource } from 'typeorm';
import { AuditLog } from './entities/audit-log.entity.js';
import { statement } from './sql.js';
import { hydrate, type AuditStore, type ReadOptions } from './store.js';

export interface Loaders {
  /** Entries by id within the request's tenant; `null` for unknown ids and other tenants' entries. */
  auditLogById: DataLoader<number, AuditLog | null>;
}

/**
 * Per request, so that nothing is cached across callers (or tenants). Made on first use: most operations
 * (every live subscription among them) never load an entry by id, and a context lives as long as its
 * operation.
 */
export function createLoaders(dataSource: DataSource, store: AuditStore, tenantId: string, reads: ReadOptions): Loaders {
  return new RequestLoaders(dataSource, store, tenantId, reads);
}

class RequestLoaders implements Loaders {
  private byId: DataLoader<number, AuditLog | null> | undefined;

  constructor(
    private readonly dataSource: DataSource,
    private readonly store: AuditStore,
    private readonly tenantId: string,
    private readonly reads: ReadOptions,
  ) {}

  get auditLogById(): DataLoader<number, AuditLog | null> {
    return (this.byId ??= new DataLoader((ids) => this.loadById(ids)));
  }

  private async loadById(ids: readonly number[]): Promise<(AuditLog | null)[]> {
    const { dataSource, tenantId } = this;
    const marks = ids.map(() => '?').join(', ');
    const rows = await this.store.read(statement(`SELECT * FROM "audit_log" WHERE "tenant_id" = ? AND "id" IN (${marks})`, [tenantId, ...ids]), this.reads);
    const byId = new Map(hydrate<AuditLog>(dataSource, dataSource.getMetadata(AuditLog), rows).map((row) => [row.id, row]));
    return ids.map((id) => byId.get(id) ?? null);
  }
}
