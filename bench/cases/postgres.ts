import 'reflect-metadata';
import { spawn } from 'node:child_process';
import Database from 'better-sqlite3';
import { createClient } from 'graphql-ws';
import { DataSource } from 'typeorm';
import WebSocket from 'ws';
import { createAuditServer, type AuditServer } from '../../src/app.js';
import { defaultLimits } from '../../src/config.js';
import { openDatabase, postgresDataSourceOptions } from '../../src/db/data-source.js';
import { createStore } from '../../src/db/store.js';
import { activityChart } from '../../src/services/activity-chart.js';
import { createApiKey } from '../../src/services/api-keys.js';
import { listAuditLogs } from '../../src/services/audit-log-query.js';
import { parseAuditLogFilter } from '../../src/services/audit-log-filter.js';
import { ALL_SCOPES } from '../../src/auth/principal.js';
import { benchDatabase, RESOURCES } from '../dataset.js';
import { interleave, median, percentile, scaled, type CaseResult } from '../stats.js';
import { load } from './ingest.js';
import { assembleChart, chartByHandQuery } from './chart.js';

/**
 * The same cases on PostgreSQL (127.0.0.1:5432, user postgres, `POSTGRES_URL` to change) and Redis
 * (`REDIS_URL`, default 127.0.0.1:6379): list and chart on the benchmark data set copied into PostgreSQL
 * (cached as database auditql_bench_<rows>), ingest through one and through two server processes on one
 * database, and fan-out from one instance to subscribers on another through Redis.
 */
const ADMIN_URL = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const DAY = 86_400_000;
const END = Date.UTC(2026, 10, 1);

const urlOf = (name: string) => {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
};

async function admin<T>(work: (ds: DataSource) => Promise<T>): Promise<T> {
  const ds = await new DataSource({ type: 'postgres', url: ADMIN_URL }).initialize();
  try {
    return await work(ds);
  } finally {
    await ds.destroy();
  }
}

/** The SQLite benchmark data set, copied once into a PostgreSQL database of its own. */
async function postgresBenchDatabase(): Promise<{ url: string; rows: number }> {
  const { file, rows } = await benchDatabase(END);
  // v2: chained entries, as bench/dataset.ts makes them.
  const name = `auditql_bench_v2_${rows}`;
  const exists = await admin(async (ds) => (await ds.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).length > 0);
  if (exists) return { url: urlOf(name), rows };
  const partial = `${name}_partial`;
  await admin(async (ds) => {
    await ds.query(`DROP DATABASE IF EXISTS "${partial}" WITH (FORCE)`);
    await ds.query(`CREATE DATABASE "${partial}"`);
  });
  const ds = await openDatabase(new DataSource(postgresDataSourceOptions({ url: urlOf(partial) })));
  const sqlite = new Database(file, { readonly: true });
  const columns = ['tenant_id', 'resource', 'resource_id', 'action', 'name', 'author_id', 'author_name', 'author_type', 'data', 'previous_data', 'meta', 'ip', 'user_agent', 'transaction_id', 'created_at', 'sequence', 'hash', 'previous_hash', 'hash_version', 'salt', 'personal_paths'];
  let batch: unknown[][] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    const params: unknown[] = [];
    const tuples = batch.map((row) => `(${row.map((value) => (params.push(value), `$${params.length}`)).join(', ')})`);
    await ds.query(`INSERT INTO "audit_log" (${columns.map((c) => `"${c}"`).join(', ')}) VALUES ${tuples.join(', ')}`, params);
    batch = [];
  };
  for (const row of sqlite.prepare(`SELECT ${columns.join(', ')} FROM audit_log ORDER BY id`).iterate() as Iterable<Record<string, unknown>>) {
    batch.push(columns.map((c) => row[c]));
    if (batch.length === 1000) await flush();
  }
  await flush();
  for (const head of sqlite.prepare('SELECT tenant_id, sequence, hash FROM audit_chain_head').all() as Array<{ tenant_id: string; sequence: number; hash: string }>) {
    await ds.query('INSERT INTO "audit_chain_head" ("tenant_id", "sequence", "hash") VALUES ($1, $2, $3)', [head.tenant_id, head.sequence, head.hash]);
  }
  await ds.query('VACUUM ANALYZE "audit_log"');
  for (const table of ['audit_activity_by', 'audit_activity_daily_by', 'audit_activity_daily']) await ds.query(`VACUUM ANALYZE "${table}"`);
  sqlite.close();
  await ds.destroy();
  await admin((a) => a.query(`ALTER DATABASE "${partial}" RENAME TO "${name}"`));
  return { url: urlOf(name), rows };
}

const time = async (fn: () => unknown) => {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
};

export async function postgresList(): Promise<CaseResult[]> {
  const { url, rows } = await postgresBenchDatabase();
  const ds = await openDatabase(new DataSource(postgresDataSourceOptions({ url })));
  const deps = { dataSource: ds, store: createStore(ds, { readWorkers: 2 }) };
  let seed = 7;
  const rnd = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32);
  const plan = Array.from({ length: Math.max(200, scaled(400)) }, () => {
    const to = END - Math.floor(rnd() * 60) * DAY;
    return { resource: RESOURCES[Math.floor(rnd() * 10)]!, from: to - 30 * DAY, to, cursor: { createdAt: to - Math.floor(rnd() * 30 * DAY), id: 2 ** 31 - 1 } };
  });
  const rawSql = `SELECT * FROM "audit_log" WHERE "tenant_id" = 'default' AND "resource" = $1 AND "created_at" >= $2 AND "created_at" < $3 AND ("created_at", "id") < ($4, $5) ORDER BY "created_at" DESC, "id" DESC LIMIT 51`;
  // The same pages in the same order on both sides, alternating page by page after 20 warm-up pages each.
  const walker = (page: (step: (typeof plan)[number]) => unknown) => {
    let k = 0;
    return () => time(() => page(plan[k++ % plan.length]!));
  };
  const { ours, baseline } = await interleave({
    ours: walker((step) => listAuditLogs(deps, parseAuditLogFilter({ resource: [step.resource], from: new Date(step.from), to: new Date(step.to) }, 'default'), 'NEWEST_FIRST', { after: step.cursor, limit: 51, inverted: false })),
    baseline: walker((step) => ds.query(rawSql, [step.resource, step.from, step.to, step.cursor.createdAt, step.cursor.id])),
    rounds: plan.length,
    warmup: 20,
  });
  await deps.store.close();
  await ds.destroy();
  const p99 = percentile(ours, 99);
  const rawP99 = percentile(baseline, 99);
  return [
    {
      case: `PostgreSQL list (${rows.toLocaleString('en')} entries)`,
      metric: 'ms p99',
      value: p99,
      baseline: rawP99,
      ratio: p99 / rawP99,
      target: 'p99 ≤ 2× raw and ≤ 10 ms',
      met: p99 <= 2 * rawP99 && p99 <= 10,
      spread: `p50–p99 ${median(ours).toFixed(2)}–${p99.toFixed(2)} ms`,
      detail: `${plan.length} pages of 50, resource + 30 days, random depth, both sides alternating page by page after 20 warm-up pages each; p50 ${median(ours).toFixed(2)} ms vs raw ${median(baseline).toFixed(2)} ms`,
    },
  ];
}

export async function postgresChart(): Promise<CaseResult[]> {
  const { url, rows } = await postgresBenchDatabase();
  const ds = await openDatabase(new DataSource(postgresDataSourceOptions({ url })));
  const deps = { dataSource: ds, store: createStore(ds, { readTimeoutMs: 60_000 }) };
  const from = END - 30 * DAY;
  const results: CaseResult[] = [];
  for (const groupBy of [null, 'ACTION'] as const) {
    const ours = () =>
      activityChart(deps, { filter: parseAuditLogFilter({ from: new Date(from), to: new Date(END) }, 'default'), interval: 'DAY', timezone: 'Europe/Berlin', groupBy, maxBuckets: defaultLimits.maxChartBuckets });
    // The same chart by hand (chart.ts): the zone's midnights across its DST change, zero fill, sorted groups.
    const { bounds, sql, params } = chartByHandQuery(from, END, groupBy !== null, 'Europe/Berlin', (n) => `$${n}::bigint`);
    const byHand = async () => assembleChart(bounds, await ds.query(sql, params), groupBy !== null);
    if (JSON.stringify(await ours()) !== JSON.stringify(await byHand())) throw new Error(`PostgreSQL chart${groupBy ? ' by action' : ''}: the raw baseline answers differently from the service`);
    const measured = await interleave({ ours: () => time(ours), baseline: () => time(byHand), rounds: Math.max(5, Math.min(9, scaled(9))) });
    const value = measured.median.ours;
    results.push({
      case: `PostgreSQL chart DAY×30, Europe/Berlin${groupBy ? ', by action' : ''} (${rows.toLocaleString('en')} entries)`,
      metric: 'ms median',
      value,
      baseline: measured.median.baseline,
      ratio: measured.median.ratio,
      spread: measured.spread,
      target: '≤ 100 ms',
      met: value <= 100,
      detail: `${measured.ours.length} rounds each, interleaved after a warm-up; baseline: the same buckets (zone, zero fill${groupBy ? ', groups' : ''}) from one raw GROUP BY + JS, same answer checked`,
    });
  }
  await deps.store.close();
  await ds.destroy();
  return results;
}

async function freshDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `auditql_bench_${Date.now().toString(36)}`;
  await admin((ds) => ds.query(`CREATE DATABASE "${name}"`));
  return { url: urlOf(name), drop: () => admin((ds) => ds.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)) };
}

/** A server process as deployed (`auditql serve`). */
async function serverProcess(env: Record<string, string>) {
  const child = spawn(process.execPath, ['dist/cjs/cli.js', 'serve'], { env: { ...process.env, NODE_ENV: '', PORT: '0', HOST: '127.0.0.1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (chunk) => {
      output += chunk;
      const match = /listening on (http:\/\/[^\s"]+)/.exec(output);
      if (match) resolve(match[1]!);
    });
    child.stderr!.on('data', (chunk) => (output += chunk));
    child.on('exit', (code) => reject(new Error(`server exited with ${code}: ${output}`)));
  });
  return { url, stop: () => new Promise<void>((resolve) => (child.once('exit', () => resolve()), child.kill('SIGTERM'))) };
}

const MUTATION = JSON.stringify({
  query: 'mutation($input: LogEventInput!) { logEvent(input: $input) { id } }',
  variables: { input: { resource: 'orders', action: 'update', resourceId: '42', data: { status: 'paid', total: '99.50' }, previousData: { status: 'open', total: '99.50' } } },
});

/**
 * logEvent at 50 connections through one server process, and through two on the same database (25 each),
 * in interleaved rounds (a fresh database each); only successful responses count.
 */
export async function postgresIngest(): Promise<CaseResult[]> {
  const seconds = Math.max(2, Math.min(10, scaled(10)));
  const runs = { 1: [] as Array<Awaited<ReturnType<typeof run>>>, 2: [] as Array<Awaited<ReturnType<typeof run>>> };
  const run = async (instances: 1 | 2) => {
    const database = await freshDatabase();
    const ds = await openDatabase(new DataSource(postgresDataSourceOptions({ url: database.url })));
    const { secret } = await createApiKey(ds, { name: 'bench', scopes: [...ALL_SCOPES] });
    const servers = [];
    for (let i = 0; i < instances; i++) servers.push(await serverProcess({ DATABASE_URL: database.url, WRITE_RATE_LIMIT: '1000000', REDIS_URL }));
    const loads = await Promise.all(servers.map((server) => load(server.url, { authorization: `Bearer ${secret}` }, MUTATION, { seconds }, 50 / instances)));
    await Promise.all(servers.map((server) => server.stop()));
    const stored = Number((await ds.query('SELECT COUNT(*) AS n FROM "audit_log"'))[0].n);
    await ds.destroy();
    await database.drop();
    const result = { rps: loads.reduce((sum, l) => sum + l.rate, 0), p99: Math.max(...loads.map((l) => l.p99)), errors: loads.reduce((sum, l) => sum + l.failed, 0), stored };
    runs[instances].push(result);
    return result;
  };
  const measured = await interleave({ baseline: async () => (await run(1)).rps, ours: async () => (await run(2)).rps });
  const summary = (list: Array<Awaited<ReturnType<typeof run>>>) =>
    `p99 ≤ ${Math.max(...list.map((r) => r.p99))} ms; ${list.reduce((sum, r) => sum + r.stored, 0)} entries stored, ${list.reduce((sum, r) => sum + r.errors, 0)} failed responses`;
  return [
    {
      case: 'PostgreSQL ingest, 1 instance',
      metric: 'logEvent/s',
      value: measured.median.baseline,
      baseline: null,
      ratio: null,
      target: '—',
      met: null,
      detail: `50 connections × ${seconds} s × ${measured.baseline.length} rounds after a warm-up round, a fresh database each (median; successful responses only); ${summary(runs[1])}`,
    },
    {
      case: 'PostgreSQL ingest, 2 instances',
      metric: 'logEvent/s',
      value: measured.median.ours,
      baseline: measured.median.baseline,
      ratio: measured.median.ratio,
      spread: measured.spread,
      target: '—',
      met: null,
      detail: `2 × 25 connections × ${seconds} s, one database and one Redis, rounds interleaved with one instance; ${summary(runs[2])}`,
    },
  ];
}

/** Subscribers on instance B, entries written on instance A at 10/s, through Redis; baseline: one instance, no Redis. */
export async function postgresFanOut(): Promise<CaseResult[]> {
  const subscribers = scaled(1000);
  const events = Math.max(20, scaled(200));
  const run = async (viaRedis: boolean) => {
    const database = await freshDatabase();
    const open = () => openDatabase(new DataSource(postgresDataSourceOptions({ url: database.url })));
    const dsA = await open();
    const dsB = viaRedis ? await open() : dsA;
    const { secret } = await createApiKey(dsA, { name: 'bench', scopes: [...ALL_SCOPES] });
    const redis = viaRedis ? { url: REDIS_URL, prefix: `auditql_bench_${Date.now().toString(36)}` } : undefined;
    const a: AuditServer = createAuditServer({ dataSource: dsA, logging: false, redis, limits: { writesPerSecond: 1_000_000, subscriptionsPerPrincipal: 100_000, subscriptionStartsPerMinute: 100_000 } });
    const b: AuditServer = viaRedis ? createAuditServer({ dataSource: dsB, logging: false, redis, limits: { subscriptionsPerPrincipal: 100_000, subscriptionStartsPerMinute: 100_000 } }) : a;
    const { url: urlA } = await a.start({ port: 0, host: '127.0.0.1' });
    const { url: urlB } = viaRedis ? await b.start({ port: 0, host: '127.0.0.1' }) : { url: urlA };
    const latencies: number[] = [];
    let outOfOrder = 0;
    const received: number[] = new Array(subscribers).fill(0);
    const clients = Array.from({ length: subscribers }, () => createClient({ url: urlB.replace(/^http/, 'ws'), webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${secret}` }, retryAttempts: 0 }));
    let subscribed = 0;
    const allSubscribed = new Promise<void>((resolve) => {
      const stop = b.pubsub.watchSubscribers((count) => {
        subscribed = count;
        if (count >= subscribers) {
          stop();
          resolve();
        }
      });
    });
    const done = new Promise<void>((resolve) => {
      clients.forEach((client, i) => {
        let last = -1;
        client.subscribe(
          { query: 'subscription { auditLogAdded { data } }' },
          {
            next: ({ data }) => {
              const { n, sentAt } = (data as { auditLogAdded: { data: { n: number; sentAt: number } } }).auditLogAdded.data;
              latencies.push(performance.timeOrigin + performance.now() - sentAt);
              if (n <= last) outOfOrder++;
              last = n;
              if (++received[i]! === events && received.every((r) => r >= events)) resolve();
            },
            error: () => undefined,
            complete: () => undefined,
          },
        );
      });
    });
    await allSubscribed;
    for (let n = 0; n < events; n++) {
      await fetch(urlA, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}` },
        body: JSON.stringify({ query: 'mutation($d: JSON) { logEvent(input: { resource: "fan", action: "out", data: $d }) { id } }', variables: { d: { n, sentAt: performance.timeOrigin + performance.now() } } }),
      });
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await Promise.race([done, new Promise((resolve) => setTimeout(resolve, 10_000))]);
    const lost = received.reduce((sum, r) => sum + (events - Math.min(events, r)), 0);
    await Promise.all(clients.map((client) => client.dispose()));
    await a.stop();
    if (viaRedis) await b.stop();
    await dsA.destroy();
    if (viaRedis) await dsB.destroy();
    await database.drop();
    return { p99: percentile(latencies, 99), p50: median(latencies), lost, outOfOrder, subscribed };
  };
  const bare = await run(false);
  const redis = await run(true);
  return [
    {
      case: `PostgreSQL fan-out through Redis (${subscribers} subscribers on B, 10/s written on A)`,
      metric: 'ms p99 write→receive',
      value: redis.p99,
      baseline: bare.p99,
      ratio: redis.p99 / bare.p99,
      target: '0 lost, 0 out of order',
      met: redis.lost === 0 && redis.outOfOrder === 0,
      detail: `${events} entries; p50 ${redis.p50.toFixed(1)} ms (one instance, no Redis: p50 ${bare.p50.toFixed(1)}, p99 ${bare.p99.toFixed(1)}); lost ${redis.lost}; out of order ${redis.outOfOrder}`,
    },
  ];
}
