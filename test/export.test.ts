import { request as httpRequest, type IncomingMessage } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seed, seedBulk } from './helpers/seed.js';
import { collect, deferred, LOG_EVENT, logEvents, signToken, startTestApp, untilSubscribed, type TestApp } from './helpers/test-app.js';
import { runCli } from './helpers/server-process.js';
import { EXPORT_COLUMNS, exportHead, exportRowWriter, exportTail } from '../src/services/export-lines.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);

type Line = Record<string, any>;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const lines = (text: string): Line[] => text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Line);

function exporter(app: TestApp) {
  const base = app.url.replace('/graphql', '');
  return async (query: string, headers: Record<string, string> = bearer(app.adminKey), method = 'GET') => {
    const response = await fetch(`${base}/export?${query}`, { headers, method });
    const text = await response.text();
    return { status: response.status, headers: response.headers, text, body: () => JSON.parse(text) as { errors: Array<{ message: string; extensions: { code: string } }> } };
  };
}

/** The auditLogs answer for the same filter and order: ids and chain fields, every page. */
async function listed(app: TestApp, filter: Record<string, unknown> | undefined, orderBy = 'OLDEST_FIRST', headers?: Record<string, string>) {
  const out: Line[] = [];
  let after: string | null = null;
  for (;;) {
    const result: { data?: any; errors?: unknown } = await app.gql(
      `query($filter: AuditLogFilter, $orderBy: AuditLogOrder, $after: String) { auditLogs(filter: $filter, orderBy: $orderBy, first: 500, after: $after) { edges { node { id sequence hash previousHash } } pageInfo { hasNextPage endCursor } } }`,
      { filter, orderBy, after },
      headers,
    );
    if (result.errors) throw new Error(JSON.stringify(result.errors));
    out.push(...result.data!.auditLogs.edges.map((e: { node: Line }) => e.node));
    if (!result.data!.auditLogs.pageInfo.hasNextPage) return out;
    after = result.data!.auditLogs.pageInfo.endCursor;
  }
}

const cli = runCli;

describe('GET /export', () => {
  let app: TestApp;
  let get: ReturnType<typeof exporter>;
  const injected: Record<string, string> = {};

  beforeAll(async () => {
    app = await startTestApp();
    get = exporter(app);
    await seed(app.dataSource, [
      ...Array.from({ length: 30 }, (_, i) => ({
        resource: ['invoices', 'orders', 'customers'][i % 3]!,
        action: ['create', 'update', 'delete'][i % 2]!,
        resourceId: String(i % 4),
        name: `Seeded ${i}`,
        authorId: `u${i % 5}`,
        authorName: `Author ${i % 5}`,
        createdAt: new Date(T0 + i * DAY),
      })),
    ]);
    await logEvents(app, [
      { resource: 'invoices', action: 'update', resourceId: '42', data: { total: 120, note: 'line one\nline "two", with comma' }, previousData: { total: 100 }, meta: { requestId: 'r-1' } },
      { resource: 'payments', action: 'refund', data: { amount: -5 } },
    ]);
    const acme = await signToken({ sub: 'acme-writer', scope: 'audit:write', tenant: 'acme' });
    for (let i = 0; i < 3; i++) await app.gql(LOG_EVENT, { input: { resource: 'acme-orders', action: 'create', resourceId: String(i) } }, bearer(acme));
    // Cells a spreadsheet would run as formulas, in every kind of column.
    const hostile = await logEvents(app, [
      { resource: '=HYPERLINK("http://evil.example","click")', action: '+cmd', resourceId: '-2+3', data: -7, meta: { safe: '=not a cell of its own' } },
    ]);
    injected.first = hostile[0].id;
    // The API trims names; a captured entry keeps them as the app wrote them.
    await seed(app.dataSource, [{ resource: '@SUM(A1:A9)', action: '\tTAB', resourceId: '\rCR', name: '=1+1', authorId: '-u', createdAt: new Date() }]);
  });
  afterAll(() => app?.close());

  it('gives every entry of the tenant in chain order, in each format, with sequence, hash and previousHash', async () => {
    const expected = await listed(app, undefined);
    expect(expected.length).toBe(34);
    expect(expected.map((e) => e.sequence)).toEqual(expected.map((_, i) => i + 1));

    const nd = await get('format=ndjson');
    expect(nd.status).toBe(200);
    expect(nd.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8');
    expect(nd.headers.get('content-disposition')).toMatch(/^attachment; filename="auditql-default-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ\.ndjson"$/);
    expect(nd.headers.get('cache-control')).toBe('no-store');
    const records = lines(nd.text);
    expect(records.map((r) => [r.id, r.sequence, r.hash, r.previousHash])).toEqual(expected.map((e) => [e.id, e.sequence, e.hash, e.previousHash]));
    expect(records.every((r) => r.tenantId === 'default')).toBe(true);
    const invoice = records.find((r) => r.resourceId === '42')!;
    expect(invoice).toMatchObject({ resource: 'invoices', action: 'update', data: { total: 120 }, previousData: { total: 100 }, meta: { requestId: 'r-1' }, hashVersion: 1 });
    expect(typeof invoice.createdAt).toBe('number');

    const json = await get('format=json');
    expect(json.status).toBe(200);
    expect(json.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(json.headers.get('content-disposition')).toMatch(/\.json"$/);
    expect(JSON.parse(json.text)).toEqual(records);

    const csv = await get('format=csv');
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv; charset=utf-8/);
    expect(csv.headers.get('content-disposition')).toMatch(/\.csv"$/);
    const rows = parse(csv.text, { columns: true }) as Array<Record<string, string>>;
    expect(csv.text.split('\r\n')[0]).toMatch(/^id,sequence,createdAt,tenantId,resource,/);
    expect(rows.map((r) => [r.id, Number(r.sequence), r.hash, r.previousHash])).toEqual(expected.map((e) => [e.id, e.sequence, e.hash, e.previousHash]));
    const invoiceRow = rows.find((r) => r.resourceId === '42')!;
    // JSON columns are JSON text; a newline, quotes and a comma inside survive RFC 4180 quoting.
    expect(JSON.parse(invoiceRow.data!)).toEqual(invoice.data);
    expect(JSON.parse(invoiceRow.personalPaths!)).toEqual(invoice.personalPaths);
    expect(invoiceRow.name).toBe('');

    // An empty selection is still a well-formed file.
    expect((await get('format=json&resource=nothing')).text).toBe('[]\n');
    expect((await get('format=ndjson&resource=nothing')).text).toBe('');
    expect(parse((await get('format=csv&resource=nothing')).text, { columns: true })).toEqual([]);
  });

  it('neutralises cells a spreadsheet would run as formulas (OWASP CSV injection)', async () => {
    const rows = parse((await get('format=csv')).text, { columns: true }) as Array<Record<string, string>>;
    const first = rows.find((r) => r.id === injected.first)!;
    const second = rows.find((r) => r.resource === `'@SUM(A1:A9)`)!;
    expect(first.resource).toBe(`'=HYPERLINK("http://evil.example","click")`);
    expect(first.action).toBe(`'+cmd`);
    expect(first.resourceId).toBe(`'-2+3`);
    expect(first.data).toBe(`'-7`);
    expect(second.resource).toBe(`'@SUM(A1:A9)`);
    expect(second.action).toBe(`'\tTAB`);
    expect(second.resourceId).toBe(`'\rCR`);
    expect(second.name).toBe(`'=1+1`);
    expect(second.authorId).toBe(`'-u`);
    // A JSON object starts with "{": its text is left as it is.
    expect(JSON.parse(first.meta!)).toEqual({ safe: '=not a cell of its own' });
    // NDJSON and JSON carry the values as they are.
    const record = lines((await get('format=ndjson')).text).find((r) => r.id === injected.first)!;
    expect(record).toMatchObject({ resource: '=HYPERLINK("http://evil.example","click")', action: '+cmd', data: -7 });
  });

  it('takes the filters of auditLogs, as repeated parameters or one JSON filter, and orderBy', async () => {
    const cases: Array<[string, Record<string, unknown>]> = [
      ['resource=invoices&resource=orders', { resource: ['invoices', 'orders'] }],
      ['action=update', { action: ['update'] }],
      ['authorId=u1&authorId=u3', { authorId: ['u1', 'u3'] }],
      ['resourceId=2', { resourceId: '2' }],
      [`from=${new Date(T0 + 5 * DAY).toISOString()}&to=${new Date(T0 + 12 * DAY).toISOString()}`, { from: new Date(T0 + 5 * DAY).toISOString(), to: new Date(T0 + 12 * DAY).toISOString() }],
      ['search=AUTHOR%203', { search: 'AUTHOR 3' }],
      ['search=ord', { search: 'ord' }],
      ['resource=invoices&action=update&authorId=u1', { resource: ['invoices'], action: ['update'], authorId: ['u1'] }],
    ];
    for (const [params, filter] of cases) {
      const expected = (await listed(app, filter)).map((e) => e.id);
      expect(expected.length, params).toBeGreaterThan(0);
      expect(lines((await get(`format=ndjson&${params}`)).text).map((r) => r.id), params).toEqual(expected);
      const asJson = new URLSearchParams({ format: 'ndjson', filter: JSON.stringify(filter) });
      expect(lines((await get(asJson.toString())).text).map((r) => r.id), params).toEqual(expected);
    }
    const transactionId = lines((await get('format=ndjson&resourceId=42')).text)[0]!.transactionId as string;
    expect(lines((await get(`format=ndjson&transactionId=${transactionId}`)).text).map((r) => r.resourceId)).toEqual(['42']);

    const newest = lines((await get('format=ndjson&orderBy=NEWEST_FIRST&resource=orders')).text).map((r) => r.id);
    expect(newest).toEqual((await listed(app, { resource: ['orders'] }, 'NEWEST_FIRST')).map((e) => e.id));
    expect(newest).toEqual(lines((await get('format=ndjson&resource=orders')).text).map((r) => r.id).reverse());
  });

  it("confines every export to the caller's tenant and to a viewer token's filter", async () => {
    const acmeReader = await signToken({ sub: 'acme-reader', scope: 'audit:read', tenant: 'acme' });
    const acme = lines((await get('format=ndjson', bearer(acmeReader))).text);
    expect(acme.map((r) => r.resource)).toEqual(['acme-orders', 'acme-orders', 'acme-orders']);
    expect(acme.map((r) => r.sequence)).toEqual([1, 2, 3]);
    expect((await get('format=ndjson&resource=invoices', bearer(acmeReader))).text).toBe('');
    const own = lines((await get('format=ndjson')).text);
    expect(own.some((r) => r.tenantId !== 'default')).toBe(false);

    const minted = await app.gql('mutation { createViewerToken(filter: { resource: ["orders"] }, expiresIn: 600) { token } }');
    const viewer = minted.data!.createViewerToken.token as string;
    const seen = lines((await get('format=ndjson', bearer(viewer))).text);
    expect(seen.length).toBe(10);
    expect(new Set(seen.map((r) => r.resource))).toEqual(new Set(['orders']));
    const outside = await get('format=ndjson&resource=invoices', bearer(viewer));
    expect(outside.status).toBe(403);
    expect(outside.body().errors[0]!.extensions.code).toBe('FORBIDDEN');
  });

  it('refuses missing or invalid credentials (401), a missing scope (403) and credentials in the URL (400)', async () => {
    const none = await get('format=ndjson', {});
    expect(none.status).toBe(401);
    expect(none.body().errors[0]!.extensions.code).toBe('UNAUTHENTICATED');
    expect((await get('format=ndjson', bearer('aql_nope_nope'))).status).toBe(401);
    expect((await get('format=ndjson', { 'x-api-key': 'aql_nope_nope' })).status).toBe(401);
    expect((await get('format=ndjson', { 'x-api-key': app.adminKey })).status).toBe(200);
    const writer = await signToken({ sub: 'w', scope: 'audit:write' });
    const forbidden = await get('format=ndjson', bearer(writer));
    expect(forbidden.status).toBe(403);
    expect(forbidden.body().errors[0]!.extensions.code).toBe('FORBIDDEN');
    expect(forbidden.text).not.toContain('"sequence"');

    for (const name of ['apiKey', 'api_key', 'access_token', 'token', 'authorization']) {
      const inUrl = await get(`format=ndjson&${name}=${encodeURIComponent(app.adminKey)}`);
      expect(inUrl.status, name).toBe(400);
      expect(inUrl.body().errors[0]!.extensions.code).toBe('BAD_USER_INPUT');
      expect(inUrl.text).not.toContain('"sequence"');
    }

    // The viewer asks HEAD to learn whether the server exports: no credentials → 401, not 404.
    expect((await get('format=ndjson', {}, 'HEAD')).status).toBe(401);
    const head = await get('format=csv', bearer(app.adminKey), 'HEAD');
    expect(head.status).toBe(200);
    expect(head.text).toBe('');
    expect(head.headers.get('content-disposition')).toMatch(/\.csv"$/);
    expect((await get('format=ndjson', bearer(app.adminKey), 'POST')).status).toBe(405);
  });

  it('answers bad parameters with 400 and BAD_USER_INPUT', async () => {
    const bad = [
      'format=xml',
      '',
      'format=csv&format=json',
      'format=ndjson&orderBy=SIDEWAYS',
      'format=ndjson&from=yesterday',
      `format=ndjson&from=${new Date(T0 + DAY).toISOString()}&to=${new Date(T0).toISOString()}`,
      'format=ndjson&resourceId=1&resourceId=2',
      'format=ndjson&search=a%00b',
      'format=ndjson&filter=%7Bnot%20json',
      `format=ndjson&filter=${encodeURIComponent(JSON.stringify({ resource: 'invoices' }))}`,
      `format=ndjson&filter=${encodeURIComponent(JSON.stringify({ color: 'red' }))}`,
      `format=ndjson&filter=${encodeURIComponent(JSON.stringify({ resource: ['a'] }))}&action=create`,
      `format=ndjson&filter=${encodeURIComponent(JSON.stringify({ resource: [] }))}`,
      'format=ndjson&limit=5',
    ];
    for (const query of bad) {
      const answer = await get(query);
      expect(answer.status, query).toBe(400);
      expect(answer.headers.get('content-type'), query).toMatch(/^application\/json/);
      expect(answer.body().errors[0]!.extensions.code, query).toBe('BAD_USER_INPUT');
    }
  });

  it('exports one snapshot: entries written while an export runs are not in it', async () => {
    const before = (await listed(app, undefined)).map((e) => e.id);
    const base = app.url.replace('/graphql', '');
    const response = await fetch(`${base}/export?format=ndjson`, { headers: bearer(app.adminKey) });
    const reader = response.body!.getReader();
    let text = '';
    const decoder = new TextDecoder();
    const first = await reader.read();
    text += decoder.decode(first.value, { stream: true });
    const written = await logEvents(app, [{ resource: 'late', action: 'create' }]);
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) text += decoder.decode(chunk.value, { stream: true });
    const ids = lines(text).map((r) => r.id);
    expect(ids).toEqual(before);
    expect(ids).not.toContain(written[0].id);
  });

  it('an NDJSON export verifies with `auditql verify --file`, and a hostile edit of a line is found', async () => {
    const file = join(app.dir, 'export.ndjson');
    writeFileSync(file, (await get('format=ndjson')).text);
    const valid = await cli(['verify', '--file', file], { DATABASE_URL: app.file });
    expect(valid.stdout).toMatch(/^default: valid, \d+ entries/m);
    expect(valid.code).toBe(0);
    const newest = join(app.dir, 'newest.ndjson');
    writeFileSync(newest, (await get('format=ndjson&orderBy=NEWEST_FIRST')).text);
    expect((await cli(['verify', '--file', newest], { DATABASE_URL: app.file })).code).toBe(0);

    const edited = readFileSync(file, 'utf8').split('\n');
    const victim = JSON.parse(edited[4]!) as Line;
    edited[4] = JSON.stringify({ ...victim, action: 'nothing-to-see' });
    const hostile = join(app.dir, 'hostile.ndjson');
    writeFileSync(hostile, edited.join('\n'));
    const broken = await cli(['verify', '--file', hostile], { DATABASE_URL: app.file });
    expect(broken.code).toBe(1);
    expect(broken.stdout).toContain(`default: BROKEN at sequence ${victim.sequence}: HASH_MISMATCH`);

    const dropped = readFileSync(file, 'utf8').split('\n').filter((_, i) => i !== 6);
    const gap = join(app.dir, 'gap.ndjson');
    writeFileSync(gap, dropped.join('\n'));
    expect((await cli(['verify', '--file', gap], { DATABASE_URL: app.file })).stdout).toContain('SEQUENCE_GAP');
  });

  it('`auditql export` writes the same file from the database, and records the export', async () => {
    const http = (await get('format=ndjson&resource=orders&resource=invoices')).text;
    const out = join(app.dir, 'cli.ndjson');
    const result = await cli(['export', '--format', 'ndjson', '--out', out, '--resource', 'orders', 'invoices'], { DATABASE_URL: app.file });
    expect(result.stderr).toContain(`exported ${lines(http).length} entries to ${out}`);
    expect(result.code).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe(http);
    const csv = await cli(['export', '--format', 'csv', '--resource-id', '42'], { DATABASE_URL: app.file });
    expect((parse(csv.stdout, { columns: true }) as Array<Record<string, string>>).map((r) => r.resource)).toEqual(['invoices']);
    const refused = await cli(['export', '--format', 'xml'], { DATABASE_URL: app.file });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('"format" must be one of csv, ndjson, json');
    const recorded = lines((await get('format=ndjson&resource=audit_log&action=export')).text);
    expect(recorded.map((r) => [r.authorType, r.meta.operation, r.data.format, r.data.rows, r.data.complete])).toEqual([
      ['operator', 'auditql export', 'ndjson', lines(http).length, true],
      ['operator', 'auditql export', 'csv', 1, true],
    ]);
    expect(recorded[0]!.meta.filter).toEqual({ resource: ['orders', 'invoices'], orderBy: 'OLDEST_FIRST' });
  });
});

describe('an export of many entries', () => {
  const TOTAL = 60_000;
  let app: TestApp;
  let base: string;
  const exportQuery = /* GraphQL */ `subscription($filter: AuditLogFilter) { auditLogAdded(filter: $filter) { id author { id } meta data } }`;

  beforeAll(async () => {
    // Exports are recorded (meta-audit `changes` records them, reads are not); a stalled client is cut after 2 s.
    app = await startTestApp({ limits: { sendTimeoutMs: 2000 }, evidence: { metaAudit: { mode: 'changes' } } });
    base = app.url.replace('/graphql', '');
    seedBulk(app.file, TOTAL, (i) => ({ name: `Entry number ${i} ${'x'.repeat(400)}` }));
    recorded = collect(app.wsClient(), exportQuery, { filter: { resource: ['audit_log'], action: ['export'] } });
    await untilSubscribed(app.server.pubsub, 1);
  }, 60_000);
  afterAll(() => app?.close());

  /** The first export entry after the first `seen` ones that `match` accepts, once the live stream has delivered it. */
  let recorded: ReturnType<typeof collect>;
  type ExportEntry = { author: { id: string }; meta: Line; data: Line };
  const entries = () => recorded.received.map((message) => message.data!.auditLogAdded as ExportEntry);
  const exportEntry = async (seen: number, match: (entry: ExportEntry) => boolean) => {
    await recorded.waitFor(() => entries().slice(seen).some(match));
    return entries().slice(seen).find(match)!;
  };

  it('is recorded as an entry: who, which filter, how many rows', async () => {
    const seen = recorded.received.length;
    const answer = await fetch(`${base}/export?format=csv&resource=resource-1&resource=resource-2&orderBy=NEWEST_FIRST`, { headers: bearer(app.adminKey) });
    const rows = parse(await answer.text(), { columns: true }) as unknown[];
    expect(rows.length).toBe(TOTAL / 25);
    const entry = await exportEntry(seen, (e) => e.data.format === 'csv');
    expect(entry.author.id).toMatch(/^apikey:/);
    expect(entry.meta).toEqual({ operation: 'export', filter: { resource: ['resource-1', 'resource-2'], orderBy: 'NEWEST_FIRST' } });
    expect(entry.data).toEqual({ format: 'csv', rows: TOTAL / 25, complete: true });
  });

  it('writes on the reader thread, chunk after chunk, the bytes the server writes from rows, and leaves the reader as it found it', async () => {
    // What the server writes itself where rows come as objects (PostgreSQL), from the same rows read here.
    const db = new Database(app.file, { readonly: true });
    const rows = db
      .prepare(`SELECT ${EXPORT_COLUMNS.map((c) => `"${c}"`).join(', ')} FROM "audit_log" WHERE "tenant_id" = 'default' AND "resource" = 'resource-1' ORDER BY "created_at", "id"`)
      .raw(true)
      .all() as unknown[][];
    db.close();
    expect(rows.length).toBe(TOTAL / 50);
    for (const format of ['ndjson', 'json', 'csv'] as const) {
      const write = exportRowWriter(format);
      // Runs of rows as the reader thread's chunks cut them (and a run of one), written by one writer.
      const expected = exportHead(format) + write(rows.slice(0, 1)) + write(rows.slice(1, 777)) + write(rows.slice(777)) + exportTail(format, true);
      const answer = await fetch(`${base}/export?format=${format}&resource=resource-1`, { headers: bearer(app.adminKey) });
      expect(Buffer.from(await answer.arrayBuffer()).equals(Buffer.from(expected))).toBe(true);
    }

    // Chunks hold at most the rows and about the bytes asked for; an abandoned stream gives its reader its
    // page cache back.
    const store = app.server.store;
    const cacheSize = async () => ((await store.read<{ cache_size: number }>({ sql: 'PRAGMA cache_size', params: [] }))[0]!.cache_size);
    const before = await cacheSize();
    const statement = { sql: `SELECT ${EXPORT_COLUMNS.map((c) => `"${c}"`).join(', ')} FROM "audit_log" ORDER BY "id"`, params: [] };
    const module = join(process.cwd(), 'src', 'services', 'export-lines.ts');
    const chunks = store.streamWritten!(statement, { module, options: 'ndjson' }, { rows: 300, bytes: 64 * 1024, cacheKib: 512 })[Symbol.asyncIterator]();
    const first = (await chunks.next()).value!;
    expect(first.rows).toBeLessThanOrEqual(300);
    expect(Buffer.from(first.text).toString().split('\n').filter(Boolean)).toHaveLength(first.rows);
    expect(first.text.byteLength).toBeLessThan(64 * 1024 + 20 * 1024);
    // Another reader answers meanwhile, with its own cache.
    expect(await cacheSize()).toBe(before);
    await chunks.return!(undefined);
    // The readers that wrote the exports above, and the one this stream held, are back to their cache size.
    expect(await cacheSize()).toBe(before);
  });

  it('stops reading the cursor when the client stops reading, cuts it after STREAM_SEND_TIMEOUT_MS and frees its reader', async () => {
    const seen = recorded.received.length;
    const answered = deferred<IncomingMessage>();
    const req = httpRequest(`${base}/export?format=ndjson`, { headers: bearer(app.adminKey) }, (res) => {
      // Takes the first chunk, then reads nothing more.
      res.once('data', () => res.pause());
      answered.resolve(res);
    });
    req.end();
    const res = await answered.promise;
    // Recorded when the server gave the export up.
    const entry = await exportEntry(seen, (e) => e.data.format === 'ndjson' && e.meta.filter.resource === undefined);
    expect(entry.data.complete).toBe(false);
    // Back-pressure held the cursor: it stopped at what the socket buffers hold, far from the end.
    expect(entry.data.rows).toBeGreaterThan(0);
    expect(entry.data.rows).toBeLessThan(TOTAL / 2);
    // Reading again, the client gets what was in flight, then a cut response: never a complete-looking file.
    const complete = new Promise<boolean>((resolve) => res.on('close', () => resolve(res.complete)));
    res.on('error', () => undefined);
    res.resume();
    expect(await complete).toBe(false);

    // Its slot and its reader are free again: a whole export and a query go through.
    const again = await fetch(`${base}/export?format=ndjson&resource=resource-7`, { headers: bearer(app.adminKey) });
    expect(again.status).toBe(200);
    expect(lines(await again.text()).length).toBe(TOTAL / 50);
    expect((await app.gql('{ auditLogs(first: 1) { totalCount } }')).data!.auditLogs.totalCount).toBeGreaterThanOrEqual(TOTAL);
  });

  it('ends the cursor when the client goes away, and takes one export per caller at a time', async () => {
    const seen = recorded.received.length;
    const abort = new AbortController();
    const response = await fetch(`${base}/export?format=json`, { headers: bearer(app.adminKey), signal: abort.signal });
    const reader = response.body!.getReader();
    await reader.read();
    // While it runs, a second export of the same caller waits its turn.
    const second = await fetch(`${base}/export?format=json`, { headers: bearer(app.adminKey) });
    expect(second.status).toBe(429);
    expect(((await second.json()) as { errors: Array<{ extensions: { code: string } }> }).errors[0]!.extensions.code).toBe('RATE_LIMITED');
    abort.abort();
    const entry = await exportEntry(seen, (e) => e.data.format === 'json');
    expect(entry.data).toMatchObject({ format: 'json', complete: false });
    expect(entry.data.rows).toBeLessThan(TOTAL / 2);
    const after = await fetch(`${base}/export?format=ndjson&resource=resource-3`, { headers: bearer(app.adminKey) });
    expect(after.status).toBe(200);
    expect(lines(await after.text()).length).toBe(TOTAL / 50);
  });
});
