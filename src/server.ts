/**
 * `auditql/server`: the audit-log GraphQL server (HTTP, SSE and graphql-ws) over a DataSource, to run on
 * its own or next to an app.
 */
import { restoreGlobals } from './shared/keep-globals.js';

export { createAuditServer, type AuditHttpHandler, type AuditServer, type AuditServerOptions, type EvidenceOptions } from './app.js';
export { useAuditContext, type AuditContextPlugin, type AuditContextOptions } from './server/audit-context.plugin.js';
export type { AuditStore, StoreOptions } from './db/store.js';
export type { Logger, LogFn } from './shared/logger.js';
export { createAuditPubSub, type AuditPubSub } from './pubsub.js';
export { createSqliteDataSource, sqliteDataSourceOptions, postgresDataSourceOptions, openDatabase } from './db/data-source.js';
export { writeTransaction } from './db/transaction.js';
export { createApiKey, revokeApiKey, listApiKeys, type CreatedApiKey } from './services/api-keys.js';
export { Scope, type Principal } from './auth/principal.js';
import type { GraphQLSchema } from 'graphql';
import { schema as builtSchema } from './schema/index.js';

/** The GraphQL schema the server serves (also printed in schema.graphql). */
export const schema: GraphQLSchema = builtSchema;

restoreGlobals();
