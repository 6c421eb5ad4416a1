import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { verifyApiKey } from '../src/auth/api-keys.js';
import { writeTransaction } from '../src/db/transaction.js';
import { createApiKey, revokeApiKey } from '../src/services/api-keys.js';
import { deferred, logEvents, startTestApp, type TestApp } from './helpers/test-app.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(() => app.close());

/**
 * Subscriptions resume after a cursor: the entry written after it is replayed at once, so the first
 * message says the subscription is live (no waiting on time).
 */
const SUBSCRIBE = 'subscription($after: String) { auditLogAdded(after: $after) { id } }';
let resumeFrom: string;
beforeAll(async () => {
  const [first] = await logEvents(app, [{ resource: 'marker', action: 'one' }, { resource: 'marker', action: 'two' }]);
  resumeFrom = first!.cursor;
});

async function readKey() {
  return createApiKey(app.dataSource, { name: 'dashboard', scopes: ['audit:read'] });
}

/** A raw graphql-ws socket with one subscription; resolves `ended` with what ended it. */
async function openSocket(key: string) {
  const socket = new WebSocket(app.wsUrl, 'graphql-transport-ws');
  const messages: Array<{ type: string; id?: string; payload?: unknown }> = [];
  const acked = deferred();
  const live = deferred();
  const closed = deferred<{ code: number; reason: string; at: number }>();
  socket.on('message', (data) => {
    const message = JSON.parse(String(data));
    messages.push(message);
    if (message.type === 'connection_ack') acked.resolve();
    if (message.type === 'next') live.resolve();
  });
  socket.on('close', (code, reason) => closed.resolve({ code, reason: String(reason), at: Date.now() }));
  await new Promise((resolve) => socket.once('open', resolve));
  socket.send(JSON.stringify({ type: 'connection_init', payload: { apiKey: key } }));
  await acked.promise;
  socket.send(JSON.stringify({ type: 'subscribe', id: '1', payload: { query: SUBSCRIBE, variables: { after: resumeFrom } } }));
  await live.promise;
  return { socket, messages, closed: closed.promise };
}

/** An SSE stream of the same subscription; resolves with its whole text once the server ends it. */
async function openSse(key: string) {
  const response = await fetch(app.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', 'x-api-key': key },
    body: JSON.stringify({ query: SUBSCRIBE, variables: { after: resumeFrom } }),
  });
  expect(response.status).toBe(200);
  const reader = response.body!.getReader();
  let text = '';
  // Live once the replayed entry has arrived.
  while (!text.includes('"auditLogAdded"')) {
    const chunk = await reader.read();
    if (chunk.done) throw new Error(`the stream ended early: ${text}`);
    text += new TextDecoder().decode(chunk.value);
  }
  const ended = (async () => {
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) return { text, at: Date.now() };
      text += new TextDecoder().decode(chunk.value);
    }
  })();
  return { ended };
}

describe('revoking an API key', () => {
  it('ends its graphql-ws and SSE streams within a second, and its socket takes no more operations', async () => {
    const { apiKey, secret } = await readKey();
    const before = app.server.pubsub.subscriberCount;
    const ws = await openSocket(secret);
    const sse = await openSse(secret);
    expect(app.server.pubsub.subscriberCount).toBe(before + 2);
    const revoked = await app.gql('mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }', { id: apiKey.id });
    expect(revoked.errors).toBeUndefined();
    const at = Date.now();
    const [closed, streamed] = await Promise.all([ws.closed, sse.ended]);
    expect(closed.code).toBe(4401);
    expect(closed.at - at).toBeLessThan(1000);
    expect(streamed.text).toMatch(/UNAUTHENTICATED/);
    expect(streamed.at - at).toBeLessThan(1000);
    expect(ws.socket.readyState).toBe(WebSocket.CLOSED);
    // Nothing of the key is left running, and HTTP refuses it at once.
    expect(app.server.pubsub.subscriberCount).toBe(before);
    expect((await app.gql('{ auditLogs { totalCount } }', {}, { authorization: `Bearer ${secret}` })).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('reaches open streams when another process revokes it (the CLI)', async () => {
    const { apiKey, secret } = await readKey();
    // Used over HTTP first, so this process remembers it as verified.
    expect((await app.gql('{ auditLogs { totalCount } }', {}, { 'x-api-key': secret, authorization: '' })).errors).toBeUndefined();
    const ws = await openSocket(secret);
    const cli = spawn(process.execPath, ['dist/cjs/cli.js', 'apikey', 'revoke', apiKey.id], { env: { ...process.env, DATABASE_URL: `sqlite:${app.file}` }, stdio: 'ignore' });
    const exited = await new Promise<number | null>((resolve) => cli.once('exit', resolve));
    expect(exited).toBe(0);
    const at = Date.now();
    const closed = await ws.closed;
    expect(closed.code).toBe(4401);
    expect(closed.at - at).toBeLessThan(1000);
    expect((await app.gql('{ auditLogs { totalCount } }', {}, { 'x-api-key': secret, authorization: '' })).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('forgets the key only once the revocation has committed', async () => {
    const { apiKey, secret } = await readKey();
    const use = () => app.gql('{ auditLogs { totalCount } }', {}, { authorization: `Bearer ${secret}` });
    expect((await use()).errors).toBeUndefined();
    // Another write holds the database while the revocation waits its turn; a request in that window
    // verifies the key (not revoked yet) and remembers it. (Verified directly: the request's read would
    // wait for the held lock.)
    const gate = deferred();
    const holding = writeTransaction(app.dataSource, () => gate.promise);
    const revoking = revokeApiKey(app.dataSource, apiKey.id);
    await verifyApiKey(app.dataSource, secret);
    gate.resolve();
    await holding;
    await revoking;
    // Once committed, nothing remembered lets it through.
    expect((await use()).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('leaves the key working when the revocation rolls back', async () => {
    const { apiKey, secret } = await readKey();
    const ws = await openSocket(secret);
    let closed = false;
    void ws.closed.then(() => (closed = true));
    await app.dataSource.query(`CREATE TRIGGER "refuse_revocation" BEFORE UPDATE OF "revoked_at" ON "api_key" BEGIN SELECT RAISE(ABORT, 'refused'); END`);
    try {
      await expect(revokeApiKey(app.dataSource, apiKey.id)).rejects.toThrow(/refused/);
    } finally {
      await app.dataSource.query('DROP TRIGGER "refuse_revocation"');
    }
    expect((await app.gql('{ auditLogs { totalCount } }', {}, { authorization: `Bearer ${secret}` })).errors).toBeUndefined();
    expect(closed).toBe(false);
    ws.socket.close();
  });
});
