import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../src/db/entities/audit-log.entity.js';
import { collect, LOG_EVENT, startTestApp, type GraphQLResponse, type TestApp } from './helpers/test-app.js';

let app: TestApp;
const WINDOW_MS = 300;

beforeAll(async () => {
  app = await startTestApp({ evidence: { metaAudit: { mode: 'all', windowMs: WINDOW_MS } } });
  await app.gql(LOG_EVENT, { input: { resource: 'posts', action: 'create' } });
});
afterAll(() => app.close());

const metaEntries = () => app.dataSource.getRepository(AuditLog).find({ where: [{ resource: 'audit_log' }, { resource: 'api_key' }], order: { sequence: 'ASC' } });
const views = (received: GraphQLResponse[]) => received.map((r) => r.data!.auditLogAdded as { action: string; resourceId: string | null; meta: Record<string, unknown> });

describe('the audit log is itself audited', () => {
  it('records reads, coalescing identical ones by one principal within the window into one entry with a count', async () => {
    // Waits for the entries on the live stream (opening it is recorded too, as `subscribe`).
    const stream = collect(app.wsClient(), 'subscription { auditLogAdded(filter: { resource: ["audit_log"], action: ["view", "subscribe"] }) { action resourceId author { id } meta } }', {}, 5);
    const query = 'query($f: AuditLogFilter) { auditLogs(filter: $f) { totalCount } }';
    for (let i = 0; i < 3; i++) expect((await app.gql(query, { f: { resource: ['posts'] } })).errors).toBeUndefined();
    await app.gql(query, { f: { resource: ['other'] } });
    await app.gql('{ auditLog(id: "1") { id } }');
    await app.gql('{ activityChart(interval: HOUR) { count } }');
    const received = views(await stream.reached);
    const byOperation = (operation: string) => received.filter((e) => e.meta.operation === operation);
    expect(byOperation('auditLogAdded')).toEqual([expect.objectContaining({ action: 'subscribe', author: { id: expect.stringMatching(/^apikey:/) } })]);
    expect(byOperation('auditLogs').map((e) => [e.meta.filter, e.meta.count])).toEqual(
      expect.arrayContaining([
        [{ resource: ['posts'], orderBy: 'NEWEST_FIRST' }, 3],
        [{ resource: ['other'], orderBy: 'NEWEST_FIRST' }, 1],
      ]),
    );
    expect(byOperation('auditLog')).toEqual([expect.objectContaining({ action: 'view', resourceId: '1', meta: expect.objectContaining({ count: 1 }) })]);
    expect(byOperation('activityChart')).toHaveLength(1);
    stream.unsubscribe();
  });

  it('records verification, checkpoints and API-key changes at once, with their outcome', async () => {
    await app.gql('{ verifyAuditChain(fromSequence: 1) { valid } }');
    await app.gql('mutation { createCheckpoint { sequence } }');
    const created = await app.gql('mutation { createApiKey(name: "ci", scopes: ["audit:read"]) { apiKey { id } } }');
    const id = created.data!.createApiKey.apiKey.id;
    await app.gql('mutation($id: ID!) { revokeApiKey(id: $id) { id } }', { id });
    const entries = (await metaEntries()).filter((e) => ['verify', 'checkpoint', 'create_key', 'revoke_key'].includes(e.action));
    expect(entries.map((e) => [e.resource, e.action])).toEqual([
      ['audit_log', 'verify'],
      ['audit_log', 'checkpoint'],
      ['api_key', 'create_key'],
      ['api_key', 'revoke_key'],
    ]);
    expect(entries[0]).toMatchObject({ data: { valid: true }, meta: { operation: 'verifyAuditChain', filter: { fromSequence: 1 } } });
    expect(entries[2]).toMatchObject({ resourceId: id, data: { name: 'ci', scopes: ['audit:read'] } });
    // Meta-entries are chained like every other entry.
    expect((await app.gql('{ verifyAuditChain { valid } }')).data!.verifyAuditChain.valid).toBe(true);
  });

  it('does not loop: reading the meta-entries is one more coalesced read, not an entry per entry seen', async () => {
    const query = '{ auditLogs(filter: { resource: ["audit_log"] }, first: 500) { edges { node { id action } } } }';
    const before = (await metaEntries()).length;
    for (let i = 0; i < 5; i++) await app.gql(query);
    await app.server.stop(); // closes the window now
    const added = (await metaEntries()).slice(before);
    expect(added.map((e) => [e.action, (e.meta as { count: number }).count])).toEqual([['view', 5]]);
  });
});

describe('META_AUDIT levels', () => {
  it.each([
    ['changes', ['verify']],
    ['off', []],
  ] as const)('%s records %j', async (mode, expected) => {
    const other = await startTestApp({ evidence: { metaAudit: { mode, windowMs: 0 } } });
    try {
      await other.gql('{ auditLogs { totalCount } }');
      await other.gql('{ verifyAuditChain { valid } }');
      // A read would have been committed before the verification's entry: the group commit keeps order.
      await other.gql(LOG_EVENT, { input: { resource: 'marker', action: 'x' } });
      const rows = await other.dataSource.getRepository(AuditLog).find({ where: { resource: 'audit_log' } });
      expect(rows.map((r) => r.action)).toEqual(expected);
    } finally {
      await other.close();
    }
  });
});
