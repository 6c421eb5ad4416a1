import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { writeAuditEntries } from '../src/audit/writer.js';
import { writeTransaction } from '../src/db/transaction.js';
import WebSocket from 'ws';
import { collect, deferred, LOG_EVENT, logEvents, startTestApp, untilSubscribed as untilLive, type TestApp } from './helpers/test-app.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ limits: { subscriberQueue: 100, maxJsonBytes: 64 * 1024 } });
});
afterAll(() => app.close());

const ADDED = /* GraphQL */ `
  subscription($filter: AuditLogFilter, $after: String) { auditLogAdded(filter: $filter, after: $after) { id cursor resource action resourceId } }
`;

/** Waits until exactly `n` live subscribers are registered on the server (the server's event, not a guessed sleep). */
const untilSubscribed = (n: number) => untilLive(app.server.pubsub, n);

// Every test starts with no live subscriber left over from the one before.
afterEach(() => untilSubscribed(0));

describe('auditLogAdded over graphql-ws', () => {
  it('delivers every new entry to several clients, each according to its filter, in commit order', async () => {
    const all1 = collect(app.wsClient(), ADDED, {}, 6);
    const all2 = collect(app.wsClient(), ADDED, {}, 6);
    const posts = collect(app.wsClient(), ADDED, { filter: { resource: ['posts'] } }, 3);
    const deletes = collect(app.wsClient(), ADDED, { filter: { action: ['delete'], resource: ['posts'] } }, 1);
    await untilSubscribed(4);
    const written = await logEvents(app, [
      { resource: 'posts', action: 'create', resourceId: '1' },
      { resource: 'users', action: 'create', resourceId: '9' },
      { resource: 'posts', action: 'update', resourceId: '1' },
      { resource: 'users', action: 'delete', resourceId: '9' },
      { resource: 'posts', action: 'delete', resourceId: '1' },
      { resource: 'orders', action: 'create', resourceId: '5' },
    ]);
    const ids = (messages: Array<{ data?: any }>) => messages.map((m) => m.data.auditLogAdded.id);
    expect(ids(await all1.reached)).toEqual(written.map((w) => w.id));
    expect(ids(await all2.reached)).toEqual(written.map((w) => w.id));
    expect(ids(await posts.reached)).toEqual([written[0].id, written[2].id, written[4].id]);
    expect(ids(await deletes.reached)).toEqual([written[4].id]);
    for (const s of [all1, all2, posts, deletes]) s.unsubscribe();
  });

  it('never publishes an entry whose transaction rolled back, and publishes a transaction\'s entries after its commit', async () => {
    const sub = collect(app.wsClient(), ADDED, { filter: { resource: ['tx'] } }, 2);
    await untilSubscribed(1);
    await expect(
      writeTransaction(app.dataSource, async (manager) => {
        await writeAuditEntries(manager, [{ resource: 'tx', action: 'rolled-back' }]);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    // Watch what reaches the pub/sub (the publisher calls it synchronously once the outermost commit is done).
    const pubsub = app.server.pubsub;
    const published: string[] = [];
    const publish = pubsub.publish;
    pubsub.publish = (entry) => (published.push(entry.action), publish.call(pubsub, entry));
    let publishedBeforeCommit = -1;
    try {
      await writeTransaction(app.dataSource, async (manager) => {
        await writeAuditEntries(manager, [{ resource: 'tx', action: 'one' }, { resource: 'tx', action: 'two' }]);
        publishedBeforeCommit = published.length;
      });
    } finally {
      pubsub.publish = publish;
    }
    const received = await sub.reached;
    expect(publishedBeforeCommit).toBe(0);
    expect(published).toEqual(['one', 'two']);
    expect(received.map((m) => m.data!.auditLogAdded.action)).toEqual(['one', 'two']);
    sub.unsubscribe();
  });

  it('resumes after a cursor: replays what was missed, then continues live, with no gap and no duplicate while writes go on', async () => {
    const [anchor] = await logEvents(app, [{ resource: 'resume', action: 'anchor' }]);
    const missed = await logEvents(app, Array.from({ length: 30 }, (_, i) => ({ resource: 'resume', action: `missed-${i}` })));
    const total = 30 + 40;
    const sub = collect(app.wsClient(), ADDED, { filter: { resource: ['resume'] }, after: anchor.cursor }, total);
    // Writes continue while the replay is under way.
    const live: Array<{ id: string }> = [];
    for (let i = 0; i < 40; i++) live.push(...(await logEvents(app, [{ resource: 'resume', action: `live-${i}` }])));
    const received = (await sub.reached).map((m) => m.data!.auditLogAdded.id);
    expect(received).toEqual([...missed, ...live].map((e) => e.id));
    sub.unsubscribe();
  });

  it('accepts the cursor of an entry received from the stream itself', async () => {
    const first = collect(app.wsClient(), ADDED, { filter: { resource: ['resume2'] } }, 1);
    await untilSubscribed(1);
    await logEvents(app, [{ resource: 'resume2', action: 'a' }]);
    const [message] = await first.reached;
    first.unsubscribe();
    const later = await logEvents(app, [{ resource: 'resume2', action: 'b' }, { resource: 'resume2', action: 'c' }]);
    const again = collect(app.wsClient(), ADDED, { filter: { resource: ['resume2'] }, after: message!.data!.auditLogAdded.cursor }, 2);
    expect((await again.reached).map((m) => m.data!.auditLogAdded.id)).toEqual(later.map((e) => e.id));
    again.unsubscribe();
  });

  it('closes a subscriber that falls behind with SLOW_CONSUMER, while others receive everything and the server stays up', async () => {
    const burst = 60; // the queue limit is 20
    const fast = collect(app.wsClient(), ADDED, { filter: { resource: ['burst'] } }, burst);
    await untilSubscribed(1);
    // A subscriber whose queue overflows: one transaction publishes the whole burst at once, and this
    // feed is read by nobody until the burst is over.
    const feed = app.server.pubsub.subscribe({ limit: 20, accept: (e) => e.resource === 'burst' });
    await writeTransaction(app.dataSource, (manager) =>
      writeAuditEntries(manager, Array.from({ length: burst }, (_, i) => ({ resource: 'burst', action: `e${i}` }))),
    );
    const got: string[] = [];
    await expect(
      (async () => {
        for await (const entry of feed) got.push(entry.action);
      })(),
    ).rejects.toThrow(/fell more than 20 entries behind/);
    // What it got before the close is complete and in order (one more than the limit can be handed over
    // directly when the reader was already waiting).
    expect(got.length).toBeGreaterThanOrEqual(20);
    expect(got.length).toBeLessThan(burst);
    expect(got).toEqual(Array.from({ length: got.length }, (_, i) => `e${i}`));
    expect((await fast.reached).map((m) => m.data!.auditLogAdded.action)).toEqual(Array.from({ length: burst }, (_, i) => `e${i}`));
    fast.unsubscribe();
    expect((await fetch(app.url.replace('/graphql', '/health'))).status).toBe(200);
  });

  it('tells a graphql-ws subscriber that stops reading why it was closed, and resuming from its cursor loses nothing', async () => {
    const total = 300;
    const big = 'x'.repeat(50_000); // large entries fill the socket buffers quickly
    const query = 'subscription($f: AuditLogFilter) { auditLogAdded(filter: $f) { action cursor data } }';
    const fast = collect(app.wsClient(), query, { f: { resource: ['burst2'] } }, total);
    // A raw graphql-transport-ws client that stops reading its socket.
    const slow = new WebSocket(app.wsUrl, 'graphql-transport-ws');
    const messages: Array<{ id?: string; type: string; payload?: any }> = [];
    const completed = deferred();
    const acked = deferred();
    slow.on('message', (raw) => {
      const message = JSON.parse(String(raw));
      if (message.type === 'connection_ack') acked.resolve();
      else messages.push(message);
      if (message.type === 'complete' && message.id === 's') completed.resolve();
    });
    await new Promise((r) => slow.once('open', r));
    slow.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${app.adminKey}` } }));
    await acked.promise;
    slow.send(JSON.stringify({ id: 's', type: 'subscribe', payload: { query, variables: { f: { resource: ['burst2'] } } } }));
    await untilSubscribed(2);
    slow.pause();
    for (let i = 0; i < total; i += 50) {
      await writeTransaction(app.dataSource, (manager) =>
        writeAuditEntries(manager, Array.from({ length: 50 }, (_, j) => ({ resource: 'burst2', action: `e${i + j}`, data: { big } }))),
      );
    }
    // The fast subscriber on the same server gets every entry, in order.
    expect((await fast.reached).map((m) => m.data!.auditLogAdded.action)).toEqual(Array.from({ length: total }, (_, i) => `e${i}`));
    fast.unsubscribe();
    slow.resume();
    await completed.promise;
    slow.close();
    const nexts = messages.filter((m) => m.type === 'next');
    const last = nexts.at(-1)!;
    expect(last.payload.errors[0].extensions.code).toBe('SLOW_CONSUMER');
    const delivered = nexts.slice(0, -1).map((m) => m.payload.data.auditLogAdded.action);
    expect(delivered.length).toBeLessThan(total);
    expect(delivered).toEqual(Array.from({ length: delivered.length }, (_, i) => `e${i}`)); // no gap before the close
    const resumeAt = last.payload.errors[0].extensions.after as string;
    expect(resumeAt).toBe(nexts.at(-2)!.payload.data.auditLogAdded.cursor);
    const rest = collect(app.wsClient(), ADDED, { filter: { resource: ['burst2'] }, after: resumeAt }, total - delivered.length);
    expect((await rest.reached).map((m) => m.data!.auditLogAdded.action)).toEqual(Array.from({ length: total - delivered.length }, (_, i) => `e${i + delivered.length}`));
    rest.unsubscribe();
    expect((await fetch(app.url.replace('/graphql', '/health'))).status).toBe(200);
  });

  it('fails a bad operation alone: the socket and its other subscriptions go on', async () => {
    const client = app.wsClient();
    const good = collect(client, ADDED, { filter: { resource: ['alone'] } }, 1);
    await untilSubscribed(1);
    const syntax = collect(client, 'subscription { auditLogAdded( ');
    const unknown = collect(client, 'subscription { nope }');
    const badCursor = collect(client, ADDED, { after: 'garbage' });
    for (const bad of [syntax, unknown]) expect((await bad.done).error).toBeDefined();
    const cursorResult = await badCursor.done;
    expect(JSON.stringify(cursorResult)).toMatch(/BAD_USER_INPUT|not a valid cursor/);
    await logEvents(app, [{ resource: 'alone', action: 'still-here' }]);
    expect((await good.reached)[0]!.data!.auditLogAdded.action).toBe('still-here');
    good.unsubscribe();
  });
});

describe('auditLogAdded over SSE', () => {
  it('streams new entries from the same /graphql endpoint', async () => {
    const response = await fetch(app.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${app.adminKey}` },
      body: JSON.stringify({ query: ADDED, variables: { filter: { resource: ['sse'] } } }),
    });
    expect(response.headers.get('content-type')).toMatch(/text\/event-stream/);
    // yoga starts the subscription when the body is first read.
    const reader = response.body!.getReader();
    let pending = reader.read();
    await untilSubscribed(1);
    const written = await logEvents(app, [{ resource: 'sse', action: 'one' }, { resource: 'other', action: 'x' }, { resource: 'sse', action: 'two' }]);
    const decoder = new TextDecoder();
    let text = '';
    const events: Array<{ data: { auditLogAdded: { id: string } } }> = [];
    while (events.length < 2) {
      const { value, done } = await pending;
      if (done) break;
      pending = reader.read();
      text += decoder.decode(value, { stream: true });
      const blocks = text.split('\n\n');
      text = blocks.pop()!;
      for (const block of blocks) {
        const data = block.split('\n').find((line) => line.startsWith('data:'));
        if (block.startsWith('event: next') && data) events.push(JSON.parse(data.slice(5)));
      }
    }
    await reader.cancel();
    expect(events.map((e) => e.data.auditLogAdded.id)).toEqual([written[0].id, written[2].id]);
  });
});

it('mutations work over graphql-ws too, through the same pipeline', async () => {
  const client = app.wsClient();
  const result = await new Promise<{ data?: any; errors?: unknown }>((resolve, reject) => {
    client.subscribe({ query: LOG_EVENT, variables: { input: { resource: 'ws', action: 'create' } } }, { next: resolve, error: reject, complete: () => {} });
  });
  expect(result.data.logEvent).toMatchObject({ resource: 'ws', action: 'create' });
  const empty = await new Promise<{ data?: any; errors?: readonly { extensions?: { code?: unknown } }[] }>((resolve, reject) => {
    client.subscribe({ query: LOG_EVENT, variables: { input: { resource: '', action: 'create' } } }, { next: resolve, error: reject, complete: () => {} });
  });
  expect(empty.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
});
