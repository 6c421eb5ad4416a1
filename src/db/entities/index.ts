import { ApiKey } from './api-key.entity.js';
import { AuditLog } from './audit-log.entity.js';

/** Every entity the audit log needs in a DataSource. */
export const auditEntities = [AuditLog, ApiKey];
