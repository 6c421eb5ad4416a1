import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './helpers/server-process.js';
import { createPostgresDatabase, servicesAvailable } from './helpers/services.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * Export and retention on PostgreSQL, end to end through the real server: what the SQLite tests prove
 * (export.test.ts, retention.test.ts) holds on the second dialect, and the files either writes verify offline.
 */
const postgres = await servicesAvailable('test/postgres-life.test.ts', 'postgres');

const DAY = 86_400_000;
const ENTRIES = 1200;
const CHART = 'query($filter: AuditLogFilter) { activityChart(filter: $filter, interval: DAY) { count } }';
const VERIFY = '{ verifyAuditChain { valid checked anchorSequence headSequence reason } }';

describe.skipIf(!postgres)('export and retention on PostgreSQL', () => {
  let app: TestApp;
  let database: Awaited<ReturnType<typeof createPostgresDatabase>>;
  let archiveDir: string;
  let work: string;

  const download = async (query: string) => {
    const response = await fetch(`${app.url.replace('/graphql', '')}/export?${query}`, { headers: { authorization: `Bearer ${app.adminKey}` } });
    return { status: response.status, type: response.headers.get('content-type'), text: await response.text() };
  };
  const verifyFile = async (name: string, text: string) => {
    const file = join(work, name);
    writeFileSync(file, text);
    return runCli(['verify', '--file', file]);
  };

  beforeAll(async () => {
    database = await createPostgresDatabase();
    archiveDir = mkdtempSync(join(tmpdir(), 'auditql-pg-archives-'));
    work = mkdtempSync(join(tmpdir(), 'auditql-pg-files-'));
    app = await startTestApp({ postgresUrl: database.url, limits: { writesPerSecond: 100_000 }, retention: { archiveDir, archiveEntries: 500, maxBatch: 200 } });
    for (let start = 0; start < ENTRIES; start += 400) {
      const inputs = Array.from({ length: 400 }, (_, i) => ({
        resource: ['orders', 'invoices'][(start + i) % 2],
        action: 'create',
        resourceId: String(start + i),
        // A cell a spreadsheet would run as a formula, and a personal value inside data.
        data: { note: (start + i) % 100 === 0 ? '=HYPERLINK("http://evil")' : `entry ${start + i}`, email: `person${start + i}@example.com` },
      }));
      const result = await app.gql('mutation($inputs: [LogEventInput!]!) { logEvents(inputs: $inputs) { id } }', { inputs });
      expect(result.errors).toBeUndefined();
    }
  });
  afterAll(async () => {
    await app?.close();
    await database?.drop();
    rmSync(archiveDir, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  });

  it('exports every entry as NDJSON that verifies offline, and as CSV with formulas neutralised', async () => {
    const ndjson = await download('format=ndjson');
    expect(ndjson.status).toBe(200);
    const lines = ndjson.text.trimEnd().split('\n').map((line) => JSON.parse(line) as { sequence: number; resource: string });
    expect(lines.map((line) => line.sequence)).toEqual(Array.from({ length: ENTRIES }, (_, i) => i + 1));
    const verified = await verifyFile('all.ndjson', ndjson.text);
    expect(verified.stdout).toMatch(new RegExp(`default: valid, ${ENTRIES} entries`));
    expect(verified.code).toBe(0);

    const orders = await download('format=ndjson&resource=orders');
    expect(orders.text.trimEnd().split('\n')).toHaveLength(ENTRIES / 2);

    const csv = await download('format=csv');
    expect(csv.status).toBe(200);
    expect(csv.type).toMatch(/text\/csv/);
    const rows = parse(csv.text, { columns: true }) as Array<Record<string, string>>;
    expect(rows).toHaveLength(ENTRIES);
    const formula = rows.find((row) => row.data!.includes('HYPERLINK'))!;
    expect(formula.data!.startsWith('=')).toBe(false);
  });

  it('purges in batches with archives; the chain verifies from the anchor, charts no longer count the purged entries', async () => {
    const policy = await app.gql('mutation { setRetentionPolicy(days: 30) { days } }');
    expect(policy.errors).toBeUndefined();
    const range = { from: new Date(Date.now() - DAY).toISOString(), to: new Date(Date.now() + DAY).toISOString() };
    const before = await app.gql(CHART, { filter: range });
    expect(before.data!.activityChart.reduce((sum: number, b: { count: number }) => sum + b.count, 0)).toBe(ENTRIES);

    // Everything written so far is 40 days old by the purge's clock.
    const batches: number[] = [];
    const [result] = await app.server.purgeExpired({ now: Date.now() + 40 * DAY, onProgress: (p) => batches.push(p.batchEntries) });
    expect(result).toMatchObject({ tenant: 'default', count: ENTRIES, fromSequence: 1, toSequence: ENTRIES, anchorSequence: ENTRIES });
    expect(result!.error).toBeUndefined();
    expect(Math.max(...batches)).toBeLessThanOrEqual(200);
    expect(result!.archives.length).toBe(Math.ceil(ENTRIES / 500));

    const verified = await app.gql(VERIFY);
    expect(verified.data!.verifyAuditChain).toEqual({ valid: true, checked: 1, anchorSequence: ENTRIES, headSequence: ENTRIES + 1, reason: null });
    const after = await app.gql(CHART, { filter: range });
    // Only the purge's own entry is left in the range.
    expect(after.data!.activityChart.reduce((sum: number, b: { count: number }) => sum + b.count, 0)).toBe(1);
    const count = await app.gql('{ auditLogs(first: 1) { totalCount } }');
    expect(count.data!.auditLogs.totalCount).toBe(1);
  });

  it('each archive verifies offline, and an export after the purge starts at the anchor and verifies', async () => {
    const files = readdirSync(archiveDir).filter((name) => name.endsWith('.ndjson.gz')).sort();
    expect(files).toHaveLength(Math.ceil(ENTRIES / 500));
    for (const file of files) {
      const checked = await runCli(['verify', '--file', join(archiveDir, file)]);
      expect(checked.stdout).toMatch(/default: valid/);
      expect(checked.code).toBe(0);
    }
    const ndjson = await download('format=ndjson');
    const lines = ndjson.text.trimEnd().split('\n').map((line) => JSON.parse(line) as { sequence: number; action: string; previousHash: string });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ sequence: ENTRIES + 1, action: 'retention_purge' });
    const verified = await verifyFile('after.ndjson', ndjson.text);
    expect(verified.code).toBe(0);
  });
});
