import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createAuditServer } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { startServerProcess } from './helpers/server-process.js';
import { collect, deferred, LOG_EVENT, startTestApp, type TestApp } from './helpers/test-app.js';

const dir = mkdtempSync(join(tmpdir(), 'auditql-defaults-'));
let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app.close();
  rmSync(dir, { recursive: true, force: true });
});

const mode = (path: string) => statSync(path).mode & 0o777;

describe('CORS', () => {
  it('gives no cross-origin access by default: no CORS headers for any origin, preflight included', async () => {
    for (const origin of ['https://evil.example', 'null', app.url.replace('/graphql', '')]) {
      const preflight = await fetch(app.url, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
      });
      expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
      expect(preflight.headers.get('access-control-allow-credentials')).toBeNull();
      const response = await fetch(app.url, {
        method: 'POST',
        headers: { origin, 'content-type': 'application/json', authorization: `Bearer ${app.adminKey}` },
        body: JSON.stringify({ query: '{ auditLogs(first: 1) { totalCount } }' }),
      });
      expect(response.headers.get('access-control-allow-origin')).toBeNull();
      expect(response.headers.get('access-control-allow-credentials')).toBeNull();
    }
  });

  it('opens to the CORS_ORIGINS allow-list only, never with credentials', async () => {
    const server = createAuditServer({ dataSource: app.dataSource, logging: false, corsOrigins: ['https://app.example', 'https://admin.example'] });
    const { url } = await server.start({ port: 0, host: '127.0.0.1' });
    try {
      const preflight = (origin: string) =>
        fetch(url, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' } });
      const allowed = await preflight('https://admin.example');
      expect(allowed.headers.get('access-control-allow-origin')).toBe('https://admin.example');
      expect(allowed.headers.get('access-control-allow-headers')).toMatch(/authorization/);
      expect(allowed.headers.get('access-control-allow-credentials')).toBeNull();
      for (const origin of ['https://evil.example', 'null', 'https://app.example.evil.example']) {
        const refused = await preflight(origin);
        expect(refused.headers.get('access-control-allow-origin')).toBeNull();
        expect(refused.headers.get('access-control-allow-credentials')).toBeNull();
      }
    } finally {
      await server.stop();
    }
    const any = createAuditServer({ dataSource: app.dataSource, logging: false, corsOrigins: ['*'] });
    const started = await any.start({ port: 0, host: '127.0.0.1' });
    try {
      const response = await fetch(started.url, { method: 'OPTIONS', headers: { origin: 'https://anyone.example', 'access-control-request-method': 'POST' } });
      expect(response.headers.get('access-control-allow-origin')).toBe('https://anyone.example');
      expect(response.headers.get('access-control-allow-credentials')).toBeNull();
    } finally {
      await any.stop();
    }
  });

  it('refuses null and malformed origins in CORS_ORIGINS at start', () => {
    expect(() => loadConfig({ CORS_ORIGINS: 'null' })).toThrow(/CORS_ORIGINS must not contain "null"/);
    expect(() => loadConfig({ CORS_ORIGINS: 'https://app.example/' })).toThrow(/CORS_ORIGINS/);
    expect(() => loadConfig({ CORS_ORIGINS: '*, https://app.example' })).toThrow(/CORS_ORIGINS/);
    expect(loadConfig({ CORS_ORIGINS: 'https://a.example, http://localhost:5173' }).corsOrigins).toEqual(['https://a.example', 'http://localhost:5173']);
    expect(loadConfig({}).corsOrigins).toEqual([]);
  });
});

describe('response headers', () => {
  it('sends nosniff and no-store on API answers, errors, refusals and health checks', async () => {
    const responses = [
      await fetch(app.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${app.adminKey}` }, body: JSON.stringify({ query: '{ auditLogs(first: 1) { totalCount } }' }) }),
      await fetch(app.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ nope }' }) }),
      await fetch(app.url, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': String(10 * 1024 * 1024) }, body: 'x'.repeat(1) }).catch(() => undefined),
      await fetch(app.url.replace('/graphql', '/health')),
      await fetch(app.url.replace('/graphql', '/live')),
    ];
    for (const response of responses) {
      if (!response) continue;
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('cache-control')).toBe('no-store');
    }
  });

  it('serves GraphiQL (development only) from the server itself, with no third-party script, pinned by a CSP', async () => {
    const response = await fetch(app.url, { headers: { accept: 'text/html' } });
    expect(response.status).toBe(200);
    const html = await response.text();
    expect(html).toMatch(/YogaGraphiQL/);
    // No script, style or font is fetched from anywhere: everything is inline.
    expect(html).not.toMatch(/<script[^>]+src=/i);
    expect(html).not.toMatch(/<link[^>]+rel="stylesheet"/i);
    expect(html).not.toMatch(/unpkg\.com|jsdelivr|cdn\./i);
    const csp = response.headers.get('content-security-policy')!;
    expect(csp).toMatch(/default-src 'none'/);
    expect(csp).toMatch(/connect-src 'self'/);
    const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => `'sha256-${createHash('sha256').update(m[1]!).digest('base64')}'`);
    expect(scripts.length).toBeGreaterThan(0);
    for (const hash of scripts) expect(csp).toContain(hash);
    expect(csp).not.toMatch(/script-src[^;]*(unsafe-inline|\*|https?:)/);
  });
});

describe('input', () => {
  const post = (body: string) =>
    fetch(app.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${app.adminKey}` }, body }).then((r) => r.json() as Promise<any>);
  // JSON escapes, as a client library sends a JavaScript string holding a lone surrogate.
  const LONE = '\\ud83d';

  it.each([
    ['resource', `{"resource":"posts${LONE}","action":"create"}`],
    ['action', `{"resource":"posts","action":"${LONE}"}`],
    ['name', `{"resource":"posts","action":"create","name":"x${LONE}y"}`],
    ['resourceId', `{"resource":"posts","action":"create","resourceId":"\\udc00"}`],
    ['a JSON value', `{"resource":"posts","action":"create","data":{"title":["ok","bad${LONE}"]}}`],
    ['a JSON key', `{"resource":"posts","action":"create","meta":{"k${LONE}":1}}`],
    ['idempotencyKey', `{"resource":"posts","action":"create","idempotencyKey":"${LONE}"}`],
  ])('refuses a lone surrogate in %s with BAD_USER_INPUT, and stores nothing', async (_field, input) => {
    const before = await app.gql('{ auditLogs { totalCount } }');
    const result = await post(`{"query":${JSON.stringify(LOG_EVENT)},"variables":{"input":${input}}}`);
    expect(result.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(result.errors[0].message).toMatch(/surrogate/);
    expect((await app.gql('{ auditLogs { totalCount } }')).data!.auditLogs.totalCount).toBe(before.data!.auditLogs.totalCount);
  });

  it('refuses lone surrogates in filters and ids, in variables and in the document', async () => {
    const search = await post(`{"query":"query($s: String) { auditLogs(filter: { search: $s }) { totalCount } }","variables":{"s":"a${LONE}"}}`);
    expect(search.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const id = await post(`{"query":"query($id: ID!) { auditLog(id: $id) { id } }","variables":{"id":"${LONE}"}}`);
    expect(id.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const literal = await post(JSON.stringify({ query: '{ auditLogs(filter: { search: "a\\ud83d" }) { totalCount } }' }));
    expect(literal.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    // A surrogate pair is a real character and passes.
    const pair = await post(`{"query":"query($s: String) { auditLogs(filter: { search: $s }) { totalCount } }","variables":{"s":"\\ud83d\\ude00"}}`);
    expect(pair.errors).toBeUndefined();
  });

  it('refuses lone surrogates over graphql-ws too, and the socket goes on', async () => {
    const client = app.wsClient();
    const bad = collect(client, 'subscription($f: AuditLogFilter) { auditLogAdded(filter: $f) { id } }', { filter: { resource: ['a\ud800'] } });
    const { error, received } = await bad.done;
    const errors = (error as Array<{ extensions?: { code?: string } }> | undefined) ?? received[0]?.errors;
    expect(errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const ok = deferred<unknown>();
    client.subscribe({ query: '{ auditLogs(first: 1) { totalCount } }' }, { next: ok.resolve, error: ok.reject, complete: () => undefined });
    expect(await ok.promise).toMatchObject({ data: { auditLogs: {} } });
  });

  it('stores at most the column size of a User-Agent (1024 characters of a 15,000-character header)', async () => {
    const userAgent = `agent/${'x'.repeat(15_000)}`;
    const written = await app.gql('mutation { logEvent(input: { resource: "ua", action: "create" }) { id userAgent } }', undefined, { 'user-agent': userAgent });
    expect(written.data!.logEvent.userAgent).toBe(userAgent.slice(0, 1024));
    const [row] = await app.dataSource.query('SELECT length(user_agent) AS n FROM audit_log WHERE id = ?', [Number(written.data!.logEvent.id)]);
    expect(row.n).toBe(1024);
  });

  it.each(['system', 'local', 'UTC+99', 'UTC+1', '+05:00', 'Mars/Olympus'])('refuses the time zone %s: IANA names only', async (timezone) => {
    const result = await app.gql('query($tz: String!) { activityChart(timezone: $tz) { count } }', { tz: timezone });
    expect(result.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it.each(['Europe/Berlin', 'UTC', 'Etc/GMT+5', 'America/New_York'])('accepts the IANA time zone %s', async (timezone) => {
    const result = await app.gql('query($tz: String!) { activityChart(timezone: $tz, interval: MONTH) { count } }', { tz: timezone });
    expect(result.errors).toBeUndefined();
  });
});

describe('the server process', () => {
  it('keeps its data folder 0700 and the database, WAL and SHM files 0600', async () => {
    const file = join(dir, 'data', 'nested', 'audit.sqlite');
    const server = await startServerProcess({ DATABASE_URL: `sqlite:${file}` });
    try {
      const response = await fetch(server.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${server.adminKey}` },
        body: JSON.stringify({ query: 'mutation { logEvent(input: { resource: "posts", action: "create" }) { id } }' }),
      });
      expect(((await response.json()) as any).data.logEvent.id).toBeDefined();
      expect(mode(join(dir, 'data'))).toBe(0o700);
      expect(mode(join(dir, 'data', 'nested'))).toBe(0o700);
      for (const suffix of ['', '-wal', '-shm']) expect([suffix, mode(`${file}${suffix}`).toString(8)]).toEqual([suffix, '600']);
    } finally {
      await server.stop();
    }
  });

  it('narrows an existing database file that others could read', async () => {
    const file = join(dir, 'old', 'audit.sqlite');
    const first = await startServerProcess({ DATABASE_URL: `sqlite:${file}` });
    await first.stop();
    const { chmodSync } = await import('node:fs');
    chmodSync(file, 0o644);
    const again = await startServerProcess({ DATABASE_URL: `sqlite:${file}` });
    try {
      expect(mode(file)).toBe(0o600);
    } finally {
      await again.stop();
    }
  });

  it('logs a failed write without the values it was run with (entry data, meta, user agent)', async () => {
    const file = join(dir, 'logs', 'audit.sqlite');
    const first = await startServerProcess({ DATABASE_URL: `sqlite:${file}` });
    const key = first.adminKey;
    await first.stop();
    // A trigger the server does not know about makes one kind of write fail inside SQLite.
    const db = new Database(file);
    db.exec(`CREATE TRIGGER refuse_secret BEFORE INSERT ON audit_log WHEN NEW.resource = 'vault' BEGIN SELECT RAISE(ABORT, 'provoked failure'); END`);
    db.close();
    const server = await startServerProcess({ DATABASE_URL: `sqlite:${file}` });
    try {
      const response = await fetch(server.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, 'user-agent': 'agent-SECRET-UA-0042' },
        body: JSON.stringify({
          query: LOG_EVENT,
          variables: { input: { resource: 'vault', action: 'open', name: 'NAME-SECRET-77', data: { pin: 'DATA-SECRET-1234' }, meta: { note: 'META-SECRET-5678' } } },
        }),
      });
      const result = (await response.json()) as any;
      expect(result.errors?.[0]?.message).toBe('Unexpected error.');
      const line = await server.waitFor(/^(.*provoked failure.*)$/m);
      expect(line).toMatch(/"level":50/);
      for (const secret of ['DATA-SECRET-1234', 'META-SECRET-5678', 'NAME-SECRET-77', 'SECRET-UA-0042']) expect(server.output()).not.toContain(secret);
      // Nor the caller's address, which went into the same statement.
      expect(line).not.toContain('127.0.0.1');
    } finally {
      await server.stop();
    }
  });
});
