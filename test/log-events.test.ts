import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, startTestApp, untilSubscribed, type TestApp } from './helpers/test-app.js';

const LOG_EVENTS = /* GraphQL */ `
  mutation Log($inputs: [LogEventInput!]!) {
    logEvents(inputs: $inputs) { id sequence resource resourceId action name author { id } data meta }
  }
`;

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ limits: { writesPerSecond: 100_000 } });
});
afterAll(() => app.close());

async function stored(resource: string): Promise<Array<{ resource_id: string; action: string }>> {
  return app.dataSource.query('SELECT resource_id, action FROM audit_log WHERE resource = ? ORDER BY sequence', [resource]);
}

describe('logEvents', () => {
  it('stores a list in its order and returns one entry per item, in the same order', async () => {
    const inputs = Array.from({ length: 25 }, (_, i) => ({ resource: 'batch', action: i % 2 ? 'update' : 'create', resourceId: String(i), data: { i } }));
    const result = await app.gql(LOG_EVENTS, { inputs });
    expect(result.errors).toBeUndefined();
    const entries = result.data!.logEvents as Array<{ id: string; sequence: number; resourceId: string; data: { i: number } }>;
    expect(entries.map((e) => e.resourceId)).toEqual(inputs.map((i) => i.resourceId));
    expect(entries.map((e) => e.data.i)).toEqual(inputs.map((_, i) => i));
    // One chain, in the list's order, with no entry of anyone else in between (one transaction).
    const sequences = entries.map((e) => Number(e.sequence));
    expect(sequences).toEqual(sequences.map((_, i) => sequences[0]! + i));
    expect((await stored('batch')).map((r) => r.resource_id)).toEqual(inputs.map((i) => i.resourceId));
    const transactions = await app.dataSource.query(`SELECT COUNT(DISTINCT transaction_id) AS n FROM audit_log WHERE resource = 'batch'`);
    expect(transactions[0].n).toBe(25); // independent events: each keeps a transaction id of its own, as logEvent's do
  });

  it('writes nothing when one item is invalid, and names the item', async () => {
    const inputs = [
      { resource: 'atomic', action: 'create', resourceId: '1' },
      { resource: 'atomic', action: 'create', resourceId: '2' },
      { resource: '  ', action: 'create', resourceId: '3' },
      { resource: 'atomic', action: 'create', resourceId: '4' },
    ];
    const result = await app.gql(LOG_EVENTS, { inputs });
    expect(result.data).toBeNull();
    expect(result.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'inputs[2].resource', index: 2 });
    expect(result.errors![0]!.message).toMatch(/^inputs\[2\]: resource must not be empty/);
    expect(await stored('atomic')).toEqual([]);
  });

  it('writes nothing when the database refuses one item, while entries written beside it are stored', async () => {
    // A real refusal by the database, for one item in the middle of the list.
    await app.dataSource.query(`CREATE TRIGGER refuse_poison BEFORE INSERT ON audit_log WHEN NEW.resource_id = 'poison' BEGIN SELECT RAISE(ABORT, 'refused'); END`);
    try {
      const [list, single] = await Promise.all([
        app.gql(LOG_EVENTS, { inputs: [{ resource: 'refused', action: 'a', resourceId: '1' }, { resource: 'refused', action: 'b', resourceId: 'poison' }, { resource: 'refused', action: 'c', resourceId: '3' }] }),
        app.gql(LOG_EVENTS, { inputs: [{ resource: 'beside', action: 'a', resourceId: '1' }] }),
      ]);
      expect(list.errors).toHaveLength(1);
      expect(list.data).toBeNull();
      expect(await stored('refused')).toEqual([]);
      expect(single.errors).toBeUndefined();
      expect(await stored('beside')).toEqual([{ resource_id: '1', action: 'a' }]);
    } finally {
      await app.dataSource.query('DROP TRIGGER refuse_poison');
    }
  });

  it('keeps idempotency per item: a retried item returns the stored entry and writes nothing', async () => {
    const first = await app.gql(LOG_EVENTS, {
      inputs: [
        { resource: 'idem', action: 'create', resourceId: '1', idempotencyKey: 'k1' },
        { resource: 'idem', action: 'create', resourceId: '2', idempotencyKey: 'k2' },
      ],
    });
    expect(first.errors).toBeUndefined();
    const [one, two] = first.data!.logEvents;
    const retry = await app.gql(LOG_EVENTS, {
      inputs: [
        { resource: 'idem', action: 'create', resourceId: '2', idempotencyKey: 'k2' },
        { resource: 'idem', action: 'create', resourceId: '3', idempotencyKey: 'k3' },
        // The same key twice in one list is one entry.
        { resource: 'idem', action: 'create', resourceId: '3', idempotencyKey: 'k3' },
        { resource: 'idem', action: 'create', resourceId: '1', idempotencyKey: 'k1' },
      ],
    });
    expect(retry.errors).toBeUndefined();
    const again = retry.data!.logEvents;
    expect(again[0].id).toBe(two.id);
    expect(again[3].id).toBe(one.id);
    expect(again[2].id).toBe(again[1].id);
    expect((await stored('idem')).map((r) => r.resource_id)).toEqual(['1', '2', '3']);
  });

  it('hands every new entry to the live stream, in order, and a replayed one not again', async () => {
    const subscribers = app.server.pubsub.subscriberCount;
    const sub = collect(app.wsClient(), 'subscription { auditLogAdded(filter: { resource: ["live-batch"] }) { resourceId } }', {}, 40);
    await untilSubscribed(app.server.pubsub, subscribers + 1);
    await app.gql(LOG_EVENTS, { inputs: [{ resource: 'live-batch', action: 'x', resourceId: 'replayed', idempotencyKey: 'once' }] });
    const inputs = Array.from({ length: 39 }, (_, i) => ({ resource: 'live-batch', action: 'x', resourceId: String(i) }));
    await app.gql(LOG_EVENTS, { inputs: [{ resource: 'live-batch', action: 'x', resourceId: 'replayed', idempotencyKey: 'once' }, ...inputs] });
    const received = (await sub.reached).map((m) => m.data!.auditLogAdded.resourceId);
    expect(received).toEqual(['replayed', ...inputs.map((i) => i.resourceId)]);
    sub.unsubscribe();
  });

  it('refuses a list longer than the limit, and one costing more than MAX_QUERY_COST through aliases', async () => {
    const tooMany = Array.from({ length: 1001 }, (_, i) => ({ resource: 'limit', action: 'x', resourceId: String(i) }));
    const refused = await app.gql(LOG_EVENTS, { inputs: tooMany });
    expect(refused.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'inputs' });
    expect(refused.errors![0]!.message).toMatch(/at most 1000/);
    const list = Array.from({ length: 1000 }, (_, i) => ({ resource: 'limit', action: 'x', resourceId: String(i) }));
    // 10 lists of 1,000 in one operation: 10 × 101 points.
    const aliases = Array.from({ length: 10 }, (_, i) => `a${i}: logEvents(inputs: $inputs) { id }`).join(' ');
    const costly = await app.gql(`mutation($inputs: [LogEventInput!]!) { ${aliases} }`, { inputs: list });
    expect(costly.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', cost: 1010 });
    expect(await stored('limit')).toEqual([]);
    // An empty list writes nothing and is not an error.
    const empty = await app.gql(LOG_EVENTS, { inputs: [] });
    expect(empty).toEqual({ data: { logEvents: [] } });
  });

  it('counts every entry against the write rate, and refuses a list longer than the rate', async () => {
    const limited = await startTestApp({ limits: { writesPerSecond: 10 } });
    try {
      const longer = await limited.gql(LOG_EVENTS, { inputs: Array.from({ length: 11 }, () => ({ resource: 'rate', action: 'x' })) });
      expect(longer.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'inputs' });
      expect(longer.errors![0]!.message).toMatch(/WRITE_RATE_LIMIT/);
      const started = Date.now();
      const first = await limited.gql(LOG_EVENTS, { inputs: Array.from({ length: 8 }, () => ({ resource: 'rate', action: 'x' })) });
      expect(first.errors).toBeUndefined();
      // 8 of the 10 writes of this second are used: a list of 3 more is refused whole.
      const second = await limited.gql(LOG_EVENTS, { inputs: Array.from({ length: 3 }, () => ({ resource: 'rate', action: 'x' })) });
      const rows = await limited.dataSource.query(`SELECT COUNT(*) AS n FROM audit_log WHERE resource = 'rate'`);
      // (The window is one second: on a machine so busy that the two requests were a second apart, the
      // second list fell into a fresh window and was rightly accepted.)
      if (Date.now() - started < 1000) {
        expect(second.errors![0]!.extensions!.code).toBe('RATE_LIMITED');
        expect(rows[0].n).toBe(8);
      } else {
        expect(rows[0].n).toBe(second.errors ? 8 : 11);
      }
    } finally {
      await limited.close();
    }
  });
});
