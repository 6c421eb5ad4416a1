import { builder } from './builder.js';

/** A record that entries are about, by the `resource` and `resourceId` they carry. */
export const AuditRecordInput = builder.inputType('AuditRecordInput', {
  description: 'A record entries are about: their resource and resourceId (a user record: "users" and its id).',
  fields: (t) => ({
    resource: t.string({ required: true }),
    resourceId: t.id({ required: true }),
  }),
});
