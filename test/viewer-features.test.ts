import { buildSchema } from 'graphql';
import { describe, expect, it } from 'vitest';
import { schema } from '../src/schema/index.js';
import { viewerFeatures } from '../src/server/viewer.js';

describe('what the server tells the viewer it offers', () => {
  it('names the optional AuditLog fields and viewer tokens only when the schema has them', () => {
    expect(viewerFeatures(schema)).toEqual(['viewerToken']);
    const chained = buildSchema(`
      type AuditLog { id: ID! sequence: String! hash: String! previousHash: String }
      type Query { auditLog(id: ID!): AuditLog }
    `);
    expect(viewerFeatures(chained)).toEqual(['sequence', 'hash', 'previousHash']);
  });
});
