import { randomBytes } from 'node:crypto';
import { request, type IncomingMessage } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'graphql-ws';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startServerProcess, type ServerProcess } from './helpers/server-process.js';
import { deferred, type GraphQLResponse } from './helpers/test-app.js';

const dir = mkdtempSync(join(tmpdir(), 'auditql-memory-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The bound the README documents for this scenario. */
const MEMORY_BOUND = 512 * 1024 * 1024;
const EVERYTHING = 'subscription($after: String) { auditLogAdded(after: $after) { id cursor data previousData meta } }';

async function gql(server: ServerProcess, key: string, query: string, variables?: Record<string, unknown>) {
  const response = await fetch(server.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ query, variables }),
  });
  const result = (await response.json()) as GraphQLResponse<any>;
  if (result.errors) throw new Error(JSON.stringify(result.errors));
  return result.data;
}

/** An entry of about 150 KB stored: data and previousData of 60 KB, meta of 30 KB. */
function largeInput(i: number) {
  return {
    resource: 'big',
    action: 'update',
    resourceId: String(i),
    data: { blob: randomBytes(30_000).toString('hex') },
    previousData: { blob: randomBytes(30_000).toString('hex') },
    meta: { note: randomBytes(15_000).toString('hex') },
  };
}

async function writeLarge(server: ServerProcess, key: string, from: number, count: number) {
  let next = from;
  const worker = async () => {
    while (next < from + count) {
      const i = next++;
      await gql(server, key, 'mutation($input: LogEventInput!) { logEvent(input: $input) { id } }', { input: largeInput(i) });
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
}

async function createKey(server: ServerProcess, name: string, scopes: string[]): Promise<string> {
  const data = await gql(server, server.adminKey, 'mutation($name: String!, $scopes: [String!]!) { createApiKey(name: $name, scopes: $scopes) { secret } }', { name, scopes });
  return data.createApiKey.secret;
}

/** A graphql-ws connection that subscribes `count` times, then stops reading from its socket. */
async function stalledSocket(server: ServerProcess, key: string, count: number, after: string) {
  const socket = new WebSocket(server.url.replace('http', 'ws'), 'graphql-transport-ws');
  const acked = deferred();
  const closed = deferred<{ code: number; reason: string }>();
  socket.on('message', (data) => {
    if (JSON.parse(String(data)).type === 'connection_ack') acked.resolve();
  });
  socket.on('close', (code, reason) => closed.resolve({ code, reason: String(reason) }));
  socket.on('error', () => undefined);
  await new Promise((resolve) => socket.once('open', resolve));
  socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${key}` } }));
  await acked.promise;
  for (let i = 0; i < count; i++) socket.send(JSON.stringify({ id: String(i), type: 'subscribe', payload: { query: EVERYTHING, variables: { after } } }));
  // The client stops reading: the server's writes back up into its buffers.
  (socket as unknown as { _socket: { pause(): void } })._socket.pause();
  return { socket, closed: closed.promise, resume: () => (socket as unknown as { _socket: { resume(): void } })._socket.resume() };
}

/** An SSE subscription whose response the client never reads. */
async function stalledSse(server: ServerProcess, key: string, after: string) {
  const body = JSON.stringify({ query: EVERYTHING, variables: { after } });
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = request(server.url, {
      method: 'POST',
      agent: false,
      headers: { accept: 'text/event-stream', 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${key}` },
    });
    req.on('response', resolve);
    req.on('error', reject);
    req.end(body);
  });
  res.pause();
  res.on('error', () => undefined);
  return res;
}

describe('memory under stalled readers', () => {
  it(`one credential with 45 resumed subscriptions over large entries that it never reads: the server stays under ${MEMORY_BOUND / 2 ** 20} MB and serves everyone else`, async () => {
    const server = await startServerProcess({ DATABASE_URL: `sqlite:${join(dir, 'audit.sqlite')}`, SQLITE_SYNCHRONOUS: 'NORMAL', WRITE_RATE_LIMIT: '100000' });
    let peak = server.rss();
    const sampler = setInterval(() => (peak = Math.max(peak, server.rss())), 100);
    try {
      const start = await gql(server, server.adminKey, 'mutation { logEvent(input: { resource: "start", action: "create" }) { cursor } }');
      const early: string = start.logEvent.cursor;
      const stored = 300;
      await writeLarge(server, server.adminKey, 0, stored);
      const baseline = server.rss();

      const attacker = await createKey(server, 'reader A', ['audit:read']);
      const neighbour = await createKey(server, 'reader B', ['audit:read']);
      // 40 over two sockets (20 per connection is the default cap) and 5 over SSE.
      const sockets = [await stalledSocket(server, attacker, 20, early), await stalledSocket(server, attacker, 20, early)];
      const sse = await Promise.all(Array.from({ length: 5 }, () => stalledSse(server, attacker, early)));

      // Another client replays the same entries and follows new ones while the attacker's streams are stalled.
      const live = 100;
      const client = createClient({ url: server.url.replace('http', 'ws'), webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: { authorization: `Bearer ${neighbour}` } });
      const received: string[] = [];
      const all = deferred();
      client.subscribe(
        { query: 'subscription($after: String) { auditLogAdded(after: $after) { id data } }', variables: { after: early } },
        {
          next: (message) => {
            const entry = (message as GraphQLResponse<any>).data?.auditLogAdded;
            if (!entry) return all.reject(new Error(JSON.stringify(message)));
            received.push(entry.id);
            if (received.length === stored + live) all.resolve();
          },
          error: all.reject,
          complete: () => undefined,
        },
      );
      await writeLarge(server, server.adminKey, stored, live);
      await all.promise;
      expect(new Set(received).size).toBe(stored + live);
      // Queries and health checks are answered too.
      expect((await gql(server, neighbour, '{ auditLogs(first: 5) { totalCount } }')).auditLogs.totalCount).toBe(stored + live + 1);
      expect((await fetch(server.url.replace('/graphql', '/live'))).status).toBe(200);

      clearInterval(sampler);
      console.log(`memory: RSS ${Math.round(baseline / 2 ** 20)} MB after writing, peak ${Math.round(peak / 2 ** 20)} MB with 45 stalled subscriptions`);
      expect(peak).toBeLessThan(MEMORY_BOUND);
      expect(server.child.exitCode).toBeNull();
      await client.dispose();
      for (const res of sse) res.destroy();
      for (const { socket } of sockets) socket.terminate();
    } finally {
      clearInterval(sampler);
      await server.stop();
    }
  }, 120_000);

  it('closes a WebSocket that does not read once its unsent bytes pass WS_MAX_BUFFERED_BYTES, with code 4008 and a reason', async () => {
    const server = await startServerProcess({ DATABASE_URL: `sqlite:${join(dir, 'slow.sqlite')}`, SQLITE_SYNCHRONOUS: 'NORMAL', WS_MAX_BUFFERED_BYTES: String(256 * 1024) });
    try {
      const start = await gql(server, server.adminKey, 'mutation { logEvent(input: { resource: "start", action: "create" }) { cursor } }');
      await writeLarge(server, server.adminKey, 0, 120);
      const stalled = await stalledSocket(server, server.adminKey, 2, start.logEvent.cursor);
      await server.waitFor(/closing a WebSocket that does not read: more than 262144 bytes unsent/);
      stalled.resume();
      expect(await stalled.closed).toEqual({ code: 4008, reason: expect.stringMatching(/^Slow consumer: more than 262144 bytes unsent/) });
    } finally {
      await server.stop();
    }
  }, 60_000);

  it('closes a WebSocket whose oldest message waited longer than STREAM_SEND_TIMEOUT_MS, and ends such an event stream', async () => {
    const server = await startServerProcess({ DATABASE_URL: `sqlite:${join(dir, 'timeout.sqlite')}`, SQLITE_SYNCHRONOUS: 'NORMAL', STREAM_SEND_TIMEOUT_MS: '1000' });
    try {
      const start = await gql(server, server.adminKey, 'mutation { logEvent(input: { resource: "start", action: "create" }) { cursor } }');
      await writeLarge(server, server.adminKey, 0, 120);
      const stalled = await stalledSocket(server, server.adminKey, 1, start.logEvent.cursor);
      await server.waitFor(/closing a WebSocket that does not read: a message waited more than 1000 ms/);
      stalled.resume();
      expect(await stalled.closed).toMatchObject({ code: 4008 });
      const res = await stalledSse(server, server.adminKey, start.logEvent.cursor);
      const ended = new Promise((resolve) => res.once('close', resolve));
      await server.waitFor(/ending an event stream that does not read/);
      res.resume();
      await ended;
    } finally {
      await server.stop();
    }
  }, 60_000);
});
