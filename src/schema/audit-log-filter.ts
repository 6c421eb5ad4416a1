import { builder } from './builder.js';

export const AuditLogFilterInput = builder.inputType('AuditLogFilter', {
  description: 'All given conditions must hold. Lists match any of their values.',
  fields: (t) => ({
    resource: t.stringList(),
    resourceId: t.string(),
    action: t.stringList(),
    authorId: t.idList(),
    transactionId: t.string({ description: 'Entries written by one database transaction share this id.' }),
    from: t.field({ type: 'DateTime', description: 'Inclusive.' }),
    to: t.field({ type: 'DateTime', description: 'Exclusive.' }),
    search: t.string({ description: 'Case-insensitive (ASCII) substring of name, resource, resourceId, action or author name.' }),
  }),
});

export const AuditLogOrderEnum = builder.enumType('AuditLogOrder', {
  values: ['NEWEST_FIRST', 'OLDEST_FIRST'] as const,
});
