import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { collect, deferred, logEvents, startTestApp, type TestApp } from './helpers/test-app.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ limits: { replayPageBytes: 16 * 1024, replaysPerPrincipal: 1, maxConcurrentReplays: 4 } });
});
afterAll(() => app.close());

const big = (i: number) => ({ resource: 'replay', action: 'update', resourceId: String(i), data: { text: 'd'.repeat(6000) }, previousData: { text: 'p'.repeat(6000) }, meta: { i } });

describe('replay of a resumed subscription', () => {
  it('reads pages bounded by bytes, with only the large fields the selection set asks for, and delivers every entry once in order', async () => {
    const [anchor] = await logEvents(app, [{ resource: 'replay', action: 'anchor' }]);
    const written = await logEvents(app, Array.from({ length: 12 }, (_, i) => big(i)));
    app.sql.reset();
    const light = collect(app.wsClient(), 'subscription($after: String) { auditLogAdded(filter: { resource: ["replay"] }, after: $after) { id action } }', { after: anchor.cursor }, 12);
    expect((await light.reached).map((m) => m.data!.auditLogAdded.id)).toEqual(written.map((w) => w.id));
    light.unsubscribe();
    const reads = app.sql.selects().filter((q) => /FROM "audit_log"/.test(q) && /"created_at"/.test(q));
    // No statement of this replay read a large column.
    expect(reads.length).toBeGreaterThan(0);
    for (const query of reads) expect(query).not.toMatch(/"a"\."(data|previous_data|meta)"/);

    app.sql.reset();
    const full = collect(
      app.wsClient(),
      'subscription($after: String) { auditLogAdded(filter: { resource: ["replay"] }, after: $after) { id ...Sides } } fragment Sides on AuditLog { state: data changes { field } }',
      { after: anchor.cursor },
      12,
    );
    const received = await full.reached;
    expect(received.map((m) => m.data!.auditLogAdded.id)).toEqual(written.map((w) => w.id));
    expect(received[0]!.data!.auditLogAdded.state).toEqual({ text: 'd'.repeat(6000) });
    full.unsubscribe();
    const pages = app.sql.selects().filter((q) => /FROM "audit_log"/.test(q) && /"a"\."data"/.test(q));
    // 12 entries of 12 KB in pages of 16 KB: one entry (and its small columns) per page, meta never read.
    expect(pages.length).toBeGreaterThanOrEqual(12);
    for (const query of pages) expect(query).not.toMatch(/"a"\."meta"/);
  });

  it('runs one replay per principal at a time (REPLAYS_PER_PRINCIPAL): a stalled one holds its principal\'s turn, not anyone else\'s', async () => {
    const [anchor] = await logEvents(app, [{ resource: 'turns', action: 'anchor' }]);
    // More than the kernel's socket buffers hold, so a reader that stops reading stops the replay mid-way.
    const blob = 'x'.repeat(60_000);
    const written = await logEvents(app, Array.from({ length: 200 }, (_, i) => ({ resource: 'turns', action: `e${i}`, data: { blob } })));
    const query = 'subscription($after: String) { auditLogAdded(filter: { resource: ["turns"] }, after: $after) { id data } }';
    const other = await app.gql('mutation { createApiKey(name: "other", scopes: ["audit:read"]) { secret } }');
    const otherKey: string = other.data!.createApiKey.secret;

    // The admin's first replay, on a socket that does not read.
    const stalled = new WebSocket(app.wsUrl, 'graphql-transport-ws');
    const acked = deferred();
    stalled.on('message', (data) => JSON.parse(String(data)).type === 'connection_ack' && acked.resolve());
    await new Promise((resolve) => stalled.once('open', resolve));
    stalled.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${app.adminKey}` } }));
    await acked.promise;
    stalled.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query, variables: { after: anchor.cursor } } }));
    (stalled as unknown as { _socket: { pause(): void } })._socket.pause();

    const waiting = collect(app.wsClient(), query, { after: anchor.cursor }, 200);
    const neighbour = collect(app.wsClient({ authorization: `Bearer ${otherKey}` }), query, { after: anchor.cursor }, 200);
    expect((await neighbour.reached).map((m) => m.data!.auditLogAdded.id)).toEqual(written.map((w) => w.id));
    // The other principal replayed everything while the admin's second replay still waits for the first.
    expect(waiting.received).toEqual([]);
    stalled.terminate();
    expect((await waiting.reached).map((m) => m.data!.auditLogAdded.id)).toEqual(written.map((w) => w.id));
    waiting.unsubscribe();
    neighbour.unsubscribe();
  });
});
