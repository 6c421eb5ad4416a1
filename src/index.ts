/**
 * The library's public face: everything of `auditql/typeorm` (capture) and `auditql/server` (the API).
 * An app adds the entity, its migrations and the subscriber to its own DataSource, wraps its request
 * handling in `withAuditContext`, and may serve the audit API next to itself.
 */
import { restoreGlobals } from './shared/keep-globals.js';

export * from './typeorm.js';
export * from './server.js';

restoreGlobals();
