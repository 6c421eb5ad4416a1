import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { writeAuditEntries } from '../src/audit/writer.js';
import { writeTransaction } from '../src/db/transaction.js';
import { encodeCursor, positionOf } from '../src/services/cursor.js';
import { deferred, startTestApp, type TestApp } from './helpers/test-app.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ limits: { subscriberQueue: 1000, subscriberQueueBytes: 256 * 1024 } });
});
afterAll(() => app.close());

describe('a live subscriber that stops reading', () => {
  it('is ended with SLOW_CONSUMER once the entries waiting for it pass SUBSCRIBER_QUEUE_BYTES, long before SUBSCRIBER_QUEUE_LIMIT', async () => {
    const query = 'subscription($after: String) { auditLogAdded(filter: { resource: ["bytes"] }, after: $after) { action cursor data } }';
    // Subscribing after this entry, the subscriber receives every later one however soon it is written.
    const [anchor] = await writeTransaction(app.dataSource, (manager) => writeAuditEntries(manager, [{ resource: 'bytes', action: 'anchor' }]));
    const slow = new WebSocket(app.wsUrl, 'graphql-transport-ws');
    const messages: Array<{ type: string; payload?: any }> = [];
    const acked = deferred();
    const completed = deferred();
    const probed = deferred();
    slow.on('message', (raw) => {
      const message = JSON.parse(String(raw));
      if (message.type === 'connection_ack') acked.resolve();
      else messages.push(message);
      if (message.type === 'next') probed.resolve();
      if (message.type === 'complete') completed.resolve();
    });
    await new Promise((resolve) => slow.once('open', resolve));
    slow.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${app.adminKey}` } }));
    await acked.promise;
    slow.send(JSON.stringify({ id: 's', type: 'subscribe', payload: { query, variables: { after: encodeCursor(positionOf(anchor!)) } } }));
    // Following the log once it has received this one.
    await writeTransaction(app.dataSource, (manager) => writeAuditEntries(manager, [{ resource: 'bytes', action: 'probe' }]));
    await probed.promise;
    slow.pause();
    // 300 entries of 50 KB: more than the sockets' buffers hold, far fewer than 1000 entries.
    const big = 'x'.repeat(50_000);
    for (let i = 0; i < 300; i += 50) {
      await writeTransaction(app.dataSource, (manager) => writeAuditEntries(manager, Array.from({ length: 50 }, (_, j) => ({ resource: 'bytes', action: `e${i + j}`, data: { big } }))));
    }
    slow.resume();
    await completed.promise;
    slow.close();
    const nexts = messages.filter((m) => m.type === 'next');
    const last = nexts.at(-1)!;
    expect(last.payload.errors[0].extensions.code).toBe('SLOW_CONSUMER');
    expect(last.payload.errors[0].message).toMatch(/more than 262144 bytes behind/);
    const delivered = nexts.slice(1, -1).map((m) => m.payload.data.auditLogAdded.action);
    expect(delivered.length).toBeLessThan(300);
    expect(delivered).toEqual(Array.from({ length: delivered.length }, (_, i) => `e${i}`));
    expect(last.payload.errors[0].extensions.after).toBe(nexts.at(-2)!.payload.data.auditLogAdded.cursor);
  });
});
