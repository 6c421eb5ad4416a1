import { request } from 'node:http';
import { connect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createClient } from 'graphql-ws';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startServerProcess } from './helpers/server-process.js';
import { openSse } from './helpers/sse.js';
import { collect, deferred, startTestApp, type GraphQLResponse } from './helpers/test-app.js';

const dir = mkdtempSync(join(tmpdir(), 'auditql-shutdown-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ADDED = 'subscription { auditLogAdded { id cursor resource } }';
const WRITE = 'mutation($input: LogEventInput!) { logEvent(input: $input) { id } }';

/**
 * A write whose headers the server has taken (it answered `100 Continue`) but whose body is still to come:
 * in flight by any definition when the signal arrives.
 */
function inFlightWrite(url: string, key: string, resourceId: string) {
  const body = JSON.stringify({ query: WRITE, variables: { input: { resource: 'inflight', action: 'create', resourceId } } });
  const accepted = deferred();
  const answer = deferred<{ status: number; body: string }>();
  const req = request(url, {
    method: 'POST',
    agent: false,
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${key}`, expect: '100-continue' },
  });
  req.on('continue', () => accepted.resolve());
  req.on('response', (res) => {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (chunk) => (text += chunk));
    res.on('end', () => answer.resolve({ status: res.statusCode!, body: text }));
    res.on('error', answer.reject);
  });
  req.on('error', (error) => {
    accepted.reject(error);
    answer.reject(error);
  });
  req.flushHeaders();
  return { accepted: accepted.promise, answer: answer.promise, send: () => req.end(body) };
}

describe('shutdown on SIGTERM', () => {
  it('answers 200 in-flight writes, ends 20 live streams with a resume cursor (WebSockets with 1001), and stores every acknowledged entry', async () => {
    const file = join(dir, 'audit.sqlite');
    const server = await startServerProcess({ DATABASE_URL: `sqlite:${file}`, SHUTDOWN_TIMEOUT_MS: '20000' });
    const key = server.adminKey;

    // 10 graphql-ws streams, each on its own socket.
    const sockets = Array.from({ length: 10 }, () => {
      const closed = deferred<{ code: number; reason: string }>();
      const messages: GraphQLResponse[] = [];
      const first = deferred();
      const completed = deferred();
      const client = createClient({
        url: server.url.replace('http', 'ws'),
        webSocketImpl: WebSocket,
        retryAttempts: 0,
        // Not lazy: the client would close the socket itself (1000) as soon as its one subscription completes.
        lazy: false,
        // The close is what this test expects; graphql-ws would print it.
        onNonLazyError: () => undefined,
        connectionParams: { authorization: `Bearer ${key}` },
        on: { closed: (event) => closed.resolve(event as { code: number; reason: string }) },
      });
      client.subscribe({ query: ADDED }, {
        next: (m) => {
          messages.push(m as GraphQLResponse);
          first.resolve();
        },
        error: completed.reject,
        complete: completed.resolve,
      });
      return { closed: closed.promise, messages, first: first.promise, completed: completed.promise, client };
    });
    // 10 SSE streams.
    const streams = await Promise.all(Array.from({ length: 10 }, () => openSse(server.url, key, ADDED)));

    // Every stream is live once it has received this entry.
    const warmup = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ query: 'mutation { logEvent(input: { resource: "warmup", action: "create" }) { id cursor } }' }),
    }).then((r) => r.json() as Promise<any>);
    const warmupCursor: string = warmup.data.logEvent.cursor;
    await Promise.all([...streams.map((s) => s.received(1)), ...sockets.map((s) => s.first)]);

    const writes = Array.from({ length: 200 }, (_, i) => inFlightWrite(server.url, key, String(i)));
    await Promise.all(writes.map((w) => w.accepted));

    server.child.kill('SIGTERM');
    await server.waitFor(/SIGTERM received/);
    for (const write of writes) write.send();

    const answers = await Promise.all(writes.map((w) => w.answer));
    const acknowledged = new Set<string>();
    for (const answer of answers) {
      const body = JSON.parse(answer.body);
      if (answer.status === 200) {
        expect(body.errors).toBeUndefined();
        acknowledged.add(body.data.logEvent.id);
      } else {
        expect([answer.status, body.errors?.[0]?.extensions?.code]).toEqual([503, 'SHUTTING_DOWN']);
      }
    }
    // They had all arrived before the signal: each is answered, none refused.
    expect(acknowledged.size).toBe(200);

    for (const socket of sockets) {
      await socket.completed;
      expect(await socket.closed).toMatchObject({ code: 1001, reason: 'Server shutting down' });
      const last = socket.messages.at(-1)!;
      expect(last.errors?.[0]?.extensions).toMatchObject({ code: 'SHUTTING_DOWN', after: warmupCursor });
    }
    for (const stream of streams) {
      const events = await stream.done;
      expect(events.at(-1)!.event).toBe('complete');
      const final = JSON.parse(events.at(-2)!.data);
      expect(final.errors[0].extensions).toMatchObject({ code: 'SHUTTING_DOWN', after: warmupCursor });
    }
    expect(await server.exited).toBe(0);
    expect(server.output()).toMatch(/shutdown complete/);

    // Every acknowledged entry is in the file.
    const db = new Database(file, { readonly: true });
    const stored = db.prepare("SELECT id FROM audit_log WHERE resource = 'inflight'").all() as Array<{ id: number }>;
    db.close();
    expect(new Set(stored.map((row) => String(row.id)))).toEqual(acknowledged);
  });

  it('refuses requests that arrive once the shutdown began with 503 SHUTTING_DOWN', async () => {
    const file = join(dir, 'late.sqlite');
    const server = await startServerProcess({ DATABASE_URL: `sqlite:${file}`, SHUTDOWN_TIMEOUT_MS: '20000' });
    // A request in flight keeps the server draining while the late one arrives.
    const holder = inFlightWrite(server.url, server.adminKey, 'holder');
    await holder.accepted;
    // A connection in the middle of its request line is busy, not idle, so the shutdown leaves it open.
    const { port } = new URL(server.url);
    const late = connect(Number(port), '127.0.0.1');
    await new Promise((resolve) => late.once('connect', resolve));
    late.write('POST /graphql HTTP/1.1\r\n');
    server.child.kill('SIGTERM');
    await server.waitFor(/SIGTERM received/);
    const body = JSON.stringify({ query: '{ auditLogs(first: 1) { totalCount } }' });
    let text = '';
    late.setEncoding('utf8');
    late.on('data', (chunk) => (text += chunk));
    const ended = new Promise((resolve) => late.once('close', resolve));
    late.end(`Host: 127.0.0.1\r\ncontent-type: application/json\r\nauthorization: Bearer ${server.adminKey}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    await ended;
    expect(text).toMatch(/^HTTP\/1\.1 503/);
    expect(text).toMatch(/retry-after: 5/i);
    expect(text).toContain('"code":"SHUTTING_DOWN"');
    holder.send();
    expect((await holder.answer).status).toBe(200);
    expect(await server.exited).toBe(0);
  });

  it('refuses new WebSockets and new subscriptions on open sockets while it drains', async () => {
    const app = await startTestApp();
    try {
      const client = app.wsClient();
      const connected = deferred();
      client.on('connected', () => connected.resolve());
      const open = collect(client, ADDED);
      await connected.promise;
      // A write in flight keeps the server draining while the late arrivals knock.
      const holder = inFlightWrite(app.url, app.adminKey, 'holder');
      await holder.accepted;
      const stopped = app.server.stop({ timeoutMs: 20_000 });

      const late = collect(client, ADDED);
      const { error, received } = await late.done;
      const errors = (error as Array<{ extensions?: Record<string, unknown> }> | undefined) ?? received[0]?.errors;
      expect(errors?.[0]?.extensions?.code).toBe('SHUTTING_DOWN');
      const ended = await open.done;
      expect(ended.received.at(-1)?.errors?.[0]?.extensions?.code).toBe('SHUTTING_DOWN');

      const refused = new WebSocket(app.wsUrl, 'graphql-transport-ws');
      const status = await new Promise<number>((resolve) => {
        refused.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        refused.once('error', () => resolve(0));
      });
      // The listening socket is closed (connection refused); an upgrade on a connection still open gets 400.
      expect([0, 400]).toContain(status);
      expect(refused.readyState).not.toBe(WebSocket.OPEN);

      holder.send();
      expect((await holder.answer).status).toBe(200);
      await stopped;
    } finally {
      await app.close();
    }
  });
});
