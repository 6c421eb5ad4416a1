import { AuditLog } from '../db/entities/audit-log.entity.js';
import { writeTransaction } from '../db/transaction.js';
import { reindexEntriesIn } from '../db/search-index.js';
import { withAuditContext, type AuditContext } from '../audit/context.js';
import { writeAuditEntries } from '../audit/writer.js';
import type { ServiceDeps } from './deps.js';
import { badUserInput, notFound } from '../shared/errors.js';

const MAX_NAME = 512;

/**
 * Changes the human label of an entry and nothing else. The log stays append-only in spirit: the rename
 * is itself recorded, as an entry of resource "audit_log" and action "rename", in the same transaction.
 */
export async function renameLog(deps: ServiceDeps, context: AuditContext, id: number, name: string): Promise<AuditLog> {
  if (name.length > MAX_NAME) throw badUserInput(`name takes at most ${MAX_NAME} characters`, 'name');
  const tenantId = context.tenantId!;
  return withAuditContext(context, () =>
    writeTransaction(deps.dataSource, async (manager) => {
      const entry = await manager.findOne(AuditLog, { where: { id, tenantId } });
      if (!entry) throw notFound(`No audit log entry with id "${id}"`);
      const previous = entry.name;
      await manager.update(AuditLog, { id, tenantId }, { name });
      await reindexEntriesIn(manager, [id]);
      entry.name = name;
      await writeAuditEntries(manager, [{ tenantId, resource: 'audit_log', resourceId: String(id), action: 'rename', previousData: { name: previous }, data: { name } }]);
      return entry;
    }),
  );
}
