import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditPubSub } from '../src/pubsub.js';
import { createRelayedPubSub, type RelayMessage, type RelayTransport } from '../src/pubsub/relay.js';
import { createStore } from '../src/db/store.js';
import { entriesAfter, tenantHead } from '../src/services/audit-log-query.js';
import { createPostgresDatabase, servicesAvailable } from './helpers/services.js';
import { collect, LOG_EVENT, startTestApp, type TestApp } from './helpers/test-app.js';
import type { DataSource } from 'typeorm';

const available = await servicesAvailable('test/live-relay.test.ts', 'postgres');

/**
 * A transport between instances that loses and reorders what it carries, worse than Redis does: every
 * third message is dropped and every other pair arrives in reverse order, unless `reliable`.
 */
class UnreliableHub {
  private readonly members: Array<{ onMessage: Array<(m: RelayMessage) => void> }> = [];
  private held: Array<() => void> = [];
  private sent = 0;
  reliable = false;
  dropped = 0;

  member(): RelayTransport {
    const member = { onMessage: [] as Array<(m: RelayMessage) => void> };
    this.members.push(member);
    return {
      send: (message) => {
        const copy = JSON.parse(JSON.stringify(message)) as RelayMessage;
        const deliver = () => this.members.forEach((m) => m.onMessage.forEach((listener) => listener(copy)));
        const n = ++this.sent;
        if (this.reliable) {
          this.held.splice(0).forEach((run) => run());
          return deliver();
        }
        if (n % 3 === 0) {
          this.dropped++;
          return;
        }
        // Hold one back and let the next overtake it.
        if (this.held.length === 0) this.held.push(deliver);
        else {
          deliver();
          this.held.splice(0).forEach((run) => run());
        }
      },
      onMessage: (listener) => member.onMessage.push(listener),
      onResync: () => undefined,
      close: async () => undefined,
    };
  }
}

function relayFor(dataSource: () => DataSource, hub: UnreliableHub) {
  let store: ReturnType<typeof createStore> | undefined;
  const deps = () => ({ dataSource: dataSource(), store: (store ??= createStore(dataSource())) });
  return createRelayedPubSub({
    local: createAuditPubSub(),
    transport: hub.member(),
    instanceId: randomUUID(),
    // No periodic check: only the positions the entries carry reveal what was lost.
    checkIntervalMs: 3_600_000,
    readAfter: (tenantId, after, limit) => entriesAfter(deps(), { tenantId }, after ?? { createdAt: -1, id: -1 }, limit),
    head: (tenantId) => tenantHead(deps(), tenantId),
  });
}

describe.skipIf(!available)('the live relay on PostgreSQL', () => {
  let database: Awaited<ReturnType<typeof createPostgresDatabase>>;
  let a: TestApp;
  let b: TestApp;
  const hub = new UnreliableHub();
  beforeAll(async () => {
    database = await createPostgresDatabase();
    let dsA: DataSource | undefined;
    let dsB: DataSource | undefined;
    a = await startTestApp({ postgresUrl: database.url, pubsub: relayFor(() => dsA!, hub) });
    dsA = a.dataSource;
    b = await startTestApp({ postgresUrl: database.url, pubsub: relayFor(() => dsB!, hub) });
    dsB = b.dataSource;
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await database?.drop();
  });

  it('delivers every entry in commit order, once, when announcements are lost and overtake each other', async () => {
    const marker = await b.gql(LOG_EVENT, { input: { resource: 'marker', action: 'create' } });
    const live = collect(b.wsClient(), 'subscription($after: String) { auditLogAdded(after: $after) { id } }', { after: marker.data!.logEvent.cursor });
    const results = await Promise.all(Array.from({ length: 90 }, (_, i) => (i % 4 === 0 ? b : a).gql(LOG_EVENT, { input: { resource: 'relay', action: 'create', resourceId: String(i) } })));
    expect(results.every((r) => !r.errors)).toBe(true);
    // The last announcement arrives: it reveals whatever is still missing.
    hub.reliable = true;
    await a.gql(LOG_EVENT, { input: { resource: 'relay', action: 'last' } });
    const stored = ((await a.dataSource.query(`SELECT "id" FROM "audit_log" WHERE "id" > $1 ORDER BY "created_at", "id"`, [Number(marker.data!.logEvent.id)])) as Array<{ id: number }>).map((r) => String(r.id));
    expect(stored).toHaveLength(91);
    await live.waitFor((messages) => messages.length >= stored.length);
    expect(live.received.map((m) => m.data!.auditLogAdded.id)).toEqual(stored);
    expect(hub.dropped).toBeGreaterThan(0);
  });
});
