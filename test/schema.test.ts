import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { printedSchema } from '../scripts/print-schema.js';

describe('schema.graphql', () => {
  it('is the schema printed from the Pothos builder (run `npm run schema:print` after changing the schema)', () => {
    expect(readFileSync(new URL('../schema.graphql', import.meta.url), 'utf8')).toBe(printedSchema());
  });

  it('keeps the public contract clients are written against', () => {
    const sdl = printedSchema();
    for (const line of [
      'auditLogs(after: String, before: String, filter: AuditLogFilter, first: Int, last: Int, orderBy: AuditLogOrder = NEWEST_FIRST): AuditLogConnection!',
      'auditLog(id: ID!): AuditLog',
      'logEvent(input: LogEventInput!): AuditLog!',
      'renameLog(id: ID!, name: String!): AuditLog!',
      'auditLogAdded(after: String, filter: AuditLogFilter): AuditLog!',
      'changes: [FieldChange!]!',
      'createdAt: DateTime!',
      'totalCount: Int!',
    ]) {
      expect(sdl).toContain(line);
    }
    expect(sdl).toMatch(/activityChart\(\s*filter: AuditLogFilter\s*groupBy: ActivityGroupBy\s*interval: ActivityInterval = DAY[\s\S]*timezone: String = "UTC"\s*\): \[ActivityBucket!\]!/);
  });
});
