import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { collect, LOG_EVENT, startTestApp, untilSubscribed, type TestApp } from './helpers/test-app.js';

let app: TestApp;
/** The server's warnings. */
const warnings: Array<{ fields: unknown; message: string }> = [];
const quiet = () => undefined;
const logger = { debug: quiet, info: quiet, error: quiet, warn: (fields: unknown, message?: string) => void warnings.push({ fields, message: message ?? String(fields) }) };
beforeAll(async () => {
  app = await startTestApp({ limits: { writesPerSecond: 1000, subscriptionsPerConnection: 20 }, logger });
});
afterAll(() => app.close());

const count = async () => Number((await app.dataSource.query('SELECT COUNT(*) AS n FROM audit_log'))[0].n);

/** After each hostile request: the server still answers a normal one. */
async function stillServing() {
  const result = await app.gql('{ auditLogs(first: 1) { totalCount } }');
  expect(result.errors).toBeUndefined();
}

async function raw(body: string, headers: Record<string, string>) {
  const response = await fetch(app.url, { method: 'POST', headers: { authorization: `Bearer ${app.adminKey}`, ...headers }, body });
  const text = await response.text();
  return { status: response.status, text };
}

/**
 * Posts a body and resolves with the status as soon as the server answers, even when the server answers
 * before the body is sent and then resets the connection (fetch reports that reset as a failure and loses
 * the status: a race with the upload's length and the machine's load).
 */
function statusOf(body: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = request(app.url, { method: 'POST', headers: { authorization: `Bearer ${app.adminKey}`, ...headers } }, (res) => {
      answered = true;
      res.resume();
      resolve(res.statusCode!);
    });
    req.on('error', (error) => {
      if (!answered) reject(error);
    });
    req.end(body);
  });
}

describe('hostile input against the running server', () => {
  it('refuses a query nested 100 deep', async () => {
    // 100 levels of selection sets (not a valid path through the schema: the limit must answer first).
    const deep = `{ auditLogs { ${'edges { '.repeat(99)}cursor${' }'.repeat(99)} } }`;
    const result = await app.gql(deep);
    expect(result.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(result.errors?.[0]?.message).toMatch(/depth|Syntax|token/i);
    await stillServing();
  });

  it('refuses 5000 aliases', async () => {
    const query = `{ ${Array.from({ length: 5000 }, (_, i) => `a${i}: auditLogs { totalCount }`).join(' ')} }`;
    const result = await raw(JSON.stringify({ query }), { 'content-type': 'application/json' });
    expect(result.text).toMatch(/alias|token|exceed/i);
    expect(result.text).toMatch(/"code":"(GRAPHQL_PARSE_FAILED|BAD_USER_INPUT)"/);
    await stillServing();
  });

  it('refuses a 20 MB body before reading it', async () => {
    const body = JSON.stringify({ query: LOG_EVENT, variables: { input: { resource: 'big', action: 'x', data: { blob: 'x'.repeat(20 * 1024 * 1024) } } } });
    const before = await count();
    expect(await statusOf(body, { 'content-type': 'application/json' })).toBe(413);
    expect(await count()).toBe(before);
    await stillServing();
  });

  it('refuses 1000 operations in one batch', async () => {
    const batch = JSON.stringify(Array.from({ length: 1000 }, () => ({ query: LOG_EVENT, variables: { input: { resource: 'batch', action: 'x' } } })));
    const before = await count();
    const result = await raw(batch, { 'content-type': 'application/json' });
    expect(result.status).toBeGreaterThanOrEqual(400);
    expect(await count()).toBe(before);
    await stillServing();
  });

  it('refuses malformed JSON with a clear error', async () => {
    const result = await raw('{"query": "{ auditLogs { totalCount } }"', { 'content-type': 'application/json' });
    expect(result.status).toBe(400);
    expect(result.text).toMatch(/JSON/i);
    await stillServing();
  });

  it('executes no mutation from a form post or a multipart upload (CSRF)', async () => {
    const before = await count();
    // What a cross-site page can send: a form without custom headers (it cannot add Authorization or x-api-key).
    const form = await fetch(app.url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `query=${encodeURIComponent('mutation { logEvent(input: { resource: "csrf", action: "x" }) { id } }')}`,
    });
    expect(form.status).toBe(403);
    expect(await form.text()).toMatch(/CSRF/);
    const boundary = 'XyZ';
    const multipart = [`--${boundary}`, 'Content-Disposition: form-data; name="operations"', '', JSON.stringify({ query: 'mutation { logEvent(input: { resource: "csrf", action: "y" }) { id } }' }), `--${boundary}--`, ''].join('\r\n');
    const upload = await raw(multipart, { 'content-type': `multipart/form-data; boundary=${boundary}` });
    expect(upload.status).toBeGreaterThanOrEqual(400);
    expect(await count()).toBe(before);
  });

  it.each(['resource', 'resourceId', 'action', 'authorId', 'search', 'transactionId'])('treats SQL-ish text in filter.%s as plain text', async (field) => {
    const evil = "x' OR '1'='1'; DROP TABLE audit_log; --";
    const value = ['resource', 'action', 'authorId'].includes(field) ? [evil] : evil;
    const result = await app.gql('query($f: AuditLogFilter) { auditLogs(filter: $f) { totalCount } }', { f: { [field]: value } });
    expect(result.errors).toBeUndefined();
    expect(result.data!.auditLogs.totalCount).toBe(0);
    await stillServing();
  });

  it('limits JSON values: 10,000 keys and 20,000 levels of nesting are refused, nothing stored', async () => {
    const before = await count();
    const wide = JSON.stringify(Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`k${i}`, i])));
    // Built as text: JSON.stringify itself overflows the stack at this depth.
    const deep = `${'['.repeat(20_000)}1${']'.repeat(20_000)}`;
    for (const data of [wide, deep]) {
      const body = `{"query":${JSON.stringify(LOG_EVENT)},"variables":{"input":{"resource":"json","action":"x","data":${data}}}}`;
      const result = JSON.parse((await raw(body, { 'content-type': 'application/json' })).text);
      expect(result.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'data' });
    }
    expect(await count()).toBe(before);
    await stillServing();
  });

  it('caps subscriptions on one socket; the ones within the cap keep working', async () => {
    const client = app.wsClient();
    const subs = Array.from({ length: 25 }, () => collect(client, 'subscription { auditLogAdded(filter: { resource: ["flood"] }) { id } }', {}, 1));
    const refused = await Promise.all(subs.slice(20).map((s) => s.done));
    for (const r of refused) expect(JSON.stringify(r)).toMatch(/SUBSCRIPTION_LIMIT|At most 20/);
    await untilSubscribed(app.server.pubsub, 20);
    await app.gql(LOG_EVENT, { input: { resource: 'flood', action: 'x' } });
    for (const s of subs.slice(0, 20)) expect((await s.reached).length).toBe(1);
    for (const s of subs) s.unsubscribe();
  });

  it('closes a socket that sends a frame over 1 MiB, and keeps serving', async () => {
    const socket = new WebSocket(app.wsUrl, 'graphql-transport-ws');
    await new Promise((r) => socket.once('open', r));
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    // Into the server's log as a client's fault, not printed to the console as an internal error.
    const printed = vi.spyOn(console, 'error');
    try {
      socket.send('x'.repeat(2 * 1024 * 1024));
      expect(await closed).toBe(1009);
      await stillServing();
      expect(printed).not.toHaveBeenCalled();
    } finally {
      printed.mockRestore();
    }
    expect(warnings).toContainEqual({ fields: { code: 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' }, message: 'closed a WebSocket that broke the protocol: Max payload size exceeded' });
  });

  it('cuts a chunked body of unknown length once it passes the limit (413), and accepts a small one', async () => {
    const post = (chunks: string[]) =>
      new Promise<number>((resolve, reject) => {
        const url = new URL(app.url);
        const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked', authorization: `Bearer ${app.adminKey}` } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        for (const chunk of chunks) req.write(chunk);
        req.end();
      });
    expect(await post(['{"query":"{ auditLogs { totalCount } }"}'])).toBe(200);
    const before = await count();
    const padding = 'x'.repeat(64 * 1024);
    const big = [`{"query":${JSON.stringify(LOG_EVENT)},"variables":{"input":{"resource":"chunked","action":"x","name":"`, ...Array.from({ length: 40 }, () => padding), '"}}}'];
    expect(await post(big)).toBe(413);
    expect(await count()).toBe(before);
    await stillServing();
  });
});

describe('rate limits', () => {
  it('answers RATE_LIMITED past a principal\'s write rate, and stores only what it accepted', async () => {
    const limited = await startTestApp({ limits: { writesPerSecond: 5 } });
    try {
      const started = Date.now();
      const results = await Promise.all(Array.from({ length: 12 }, () => limited.gql(LOG_EVENT, { input: { resource: 'rl', action: 'x' } })));
      const elapsed = Date.now() - started;
      const ok = results.filter((r) => !r.errors).length;
      const refused = results.filter((r) => r.errors?.[0]?.extensions?.code === 'RATE_LIMITED');
      // The rate is counted per one-second window: on a machine so busy that the twelve requests took
      // longer, a later window rightly accepts five more.
      const windows = elapsed < 1000 ? 1 : Math.ceil(elapsed / 1000) + 1;
      if (windows === 1) expect(ok).toBe(5);
      else expect(ok).toBeLessThanOrEqual(Math.min(12, 5 * windows));
      expect(refused).toHaveLength(12 - ok);
      expect(refused.length).toBeGreaterThan(0);
      expect(refused[0]!.errors![0]!.extensions!.retryAfterMs).toBeGreaterThan(0);
      expect(Number((await limited.dataSource.query('SELECT COUNT(*) AS n FROM audit_log'))[0].n)).toBe(ok);
    } finally {
      await limited.close();
    }
  });
});

describe('subscription quotas per principal', () => {
  it('caps live subscriptions across connections and frees the slot when one ends', async () => {
    const capped = await startTestApp({ limits: { subscriptionsPerPrincipal: 3 } });
    try {
      const query = 'subscription { auditLogAdded { id } }';
      const first = [capped.wsClient(), capped.wsClient(), capped.wsClient()].map((client) => collect(client, query));
      await untilSubscribed(capped.server.pubsub, 3);
      expect(capped.server.pubsub.subscriberCount).toBe(3);
      const fourth = collect(capped.wsClient(), query);
      expect(JSON.stringify(await fourth.done)).toMatch(/SUBSCRIPTION_LIMIT/);
      first[0]!.unsubscribe();
      await untilSubscribed(capped.server.pubsub, 2);
      const again = collect(capped.wsClient(), query);
      await untilSubscribed(capped.server.pubsub, 3);
      expect(capped.server.pubsub.subscriberCount).toBe(3);
      again.unsubscribe();
      for (const s of first) s.unsubscribe();
    } finally {
      await capped.close();
    }
  });

  it('limits how fast one principal may start subscriptions', async () => {
    const capped = await startTestApp({ limits: { subscriptionStartsPerMinute: 2 } });
    try {
      const client = capped.wsClient();
      const subs = [0, 1, 2].map(() => collect(client, 'subscription { auditLogAdded { id } }'));
      expect(JSON.stringify(await subs[2]!.done)).toMatch(/RATE_LIMITED/);
      for (const s of subs) s.unsubscribe();
    } finally {
      await capped.close();
    }
  });
});

describe('production mode', () => {
  it('turns introspection and field suggestions off', async () => {
    const prod = await startTestApp({ production: true });
    try {
      const introspection = await prod.gql('{ __schema { types { name } } }');
      expect(introspection.errors?.[0]?.message).toMatch(/introspection/i);
      const typo = await prod.gql('{ auditLog { id } }'.replace('auditLog', 'auditLogz'));
      expect(typo.errors?.[0]?.message).not.toMatch(/Did you mean/);
    } finally {
      await prod.close();
    }
  });
});
