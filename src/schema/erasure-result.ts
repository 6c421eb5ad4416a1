import { eraseActor, type ErasureResult } from '../services/erasure.js';
import { forbidden } from '../shared/errors.js';
import { AuditLogRef } from './audit-log.js';
import { AuditRecordInput } from './audit-record-input.js';
import { builder } from './builder.js';
import { COST } from './cost.js';

const ErasureResultRef = builder.objectRef<ErasureResult>('ErasureResult').implement({
  description: "What an erasure of an author's personal data did (README, \"Erasure\").",
  fields: (t) => ({
    erasedEntries: t.exposeInt('erasedEntries', { description: 'Entries whose personal values were erased now (0 when the author has none left).' }),
    erasedMentions: t.exposeInt('erasedMentions', {
      description: "Others' reads of the log (views, streams, exports) whose recorded filter named the person (their author id, or the id of one of the records given), erased now: the filter's values erased, the reader's own kept.",
    }),
    erasedRecordEntries: t.exposeInt('erasedRecordEntries', {
      description: "Entries others wrote about the person's records (the records argument), whose personal values inside data, previousData and meta were erased now; their authors' values stay.",
    }),
    recordEntriesLeft: t.exposeInt('recordEntriesLeft', {
      description: 'Entries about those records with personal values that an earlier auditql hashed with one salt for everything (hash version 1): left as they are.',
    }),
    pseudonym: t.exposeString('pseudonym', { description: "What the author's id became in those entries: the same for the same author in every erasure." }),
    entry: t.field({ type: AuditLogRef, description: 'The entry that records the erasure (resource "audit_log", action "erase"); it holds none of the erased values.', resolve: (result) => result.entry }),
    erasedArchivedEntries: t.exposeInt('erasedArchivedEntries', { description: 'Entries erased in the retention archives (RETENTION_ARCHIVE_DIR), whose files were rewritten in place; 0 without archives.' }),
    archiveFiles: t.exposeInt('archiveFiles', { description: 'Archive files rewritten for those entries.' }),
    storageCleared: t.exposeBoolean('storageCleared', {
      description: "SQLite: the database's files no longer hold the erased bytes (write-ahead log truncated). False on PostgreSQL, or when readers held the log for the whole wait.",
    }),
  }),
});

builder.mutationField('eraseActor', (t) =>
  t.field({
    type: ErasureResultRef,
    authScopes: { admin: true },
    complexity: COST.one,
    description:
      "GDPR Art. 17: removes an author's name, IP address, user agent and personal fields from every entry of the caller's tenant they authored, and replaces their id with a pseudonym; others' reads of the log that filtered by their id lose the filter's values, and entries about their own records (records) lose their personal values inside JSON. The chain still verifies (each value's salted digest stays). Recorded as an entry.",
    args: {
      authorId: t.arg.id({ required: true }),
      reason: t.arg.string({ required: true, description: 'Why: a request reference, the legal ground. Stored as written, so it should name no one.' }),
      records: t.arg({
        type: [AuditRecordInput],
        description: "The person's own records (at most 100): the personal values inside entries about them are erased too, whoever wrote those entries.",
      }),
    },
    resolve: async (_root, args, ctx) => {
      const principal = ctx.principal;
      if (!principal) throw forbidden('Erasure needs the audit:admin scope');
      return eraseActor(
        {
          dataSource: ctx.dataSource,
          store: ctx.store,
          publish: (entry) => ctx.pubsub.publish(entry),
          archiveDir: ctx.retentionArchiveDir,
          onArchiveLockWait: () => ctx.logger.warn(`erasure: waiting for another process to finish rewriting the archives in ${ctx.retentionArchiveDir}`),
        },
        {
          tenantId: ctx.tenantId,
          authorId: String(args.authorId),
          reason: args.reason,
          records: (args.records ?? []).map((record) => ({ resource: record.resource, resourceId: String(record.resourceId) })),
          by: { id: principal.id, name: principal.name, type: principal.type },
          ip: ctx.audit.ip ?? null,
          userAgent: ctx.audit.userAgent ?? null,
          operation: 'eraseActor',
        },
      );
    },
  }),
);
