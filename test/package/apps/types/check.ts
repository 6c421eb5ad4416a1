// Type-checked (not run) under each module resolution an app may use, with skipLibCheck off.
import { AuditSubscriber, createAuditServer, withAuditContext, type AuditServerOptions } from 'auditql';
import { createAuditSubscriber, type AuditCaptureOptions } from 'auditql/typeorm';
import { schema, type AuditServer } from 'auditql/server';

const options: AuditCaptureOptions = { redact: ['pin'] };
export const subscriber = createAuditSubscriber(options);
export const registered = AuditSubscriber;
export const run = (fn: () => void) => withAuditContext({ author: { id: 'x' } }, fn);
export type Options = AuditServerOptions;
export type Server = AuditServer;
export const make: typeof createAuditServer = createAuditServer;
export const printed = schema.getQueryType()?.name;
