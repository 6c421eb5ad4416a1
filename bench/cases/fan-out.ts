import 'reflect-metadata';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { createPubSub, createSchema, createYoga } from 'graphql-yoga';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import { createAuditServer, type AuditServer } from '../../src/app.js';
import { writeAuditEntries } from '../../src/audit/writer.js';
import { createSqliteDataSource, openDatabase } from '../../src/db/data-source.js';
import { writeTransaction } from '../../src/db/transaction.js';
import { createApiKey } from '../../src/services/api-keys.js';
import { ALL_SCOPES } from '../../src/auth/principal.js';
import { percentile, scaled, type CaseResult } from '../stats.js';
import type { DataSource } from 'typeorm';

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Report {
  latencies: number[];
  sequences: number[][];
  closeReasons: string[];
}

async function runSubscribers(url: string, count: number, slow: number, query: string, connectionParams: Record<string, unknown>, publish: () => Promise<number>, slowQuery?: string) {
  const worker = new Worker(new URL('./subscribers.worker.mjs', import.meta.url), { workerData: { url, count, slow, query, slowQuery, connectionParams } });
  worker.on('error', (error) => console.error('subscriber worker failed:', error));
  const ask = <T,>(command: string) => new Promise<T>((resolve) => {
    worker.once('message', resolve);
    worker.postMessage(command);
  });
  for (let i = 0; i < 600; i++) {
    if ((await ask<{ ready: number }>('ready?')).ready >= count) break;
    await sleep(100);
  }
  await sleep(500); // let the last subscribe messages land
  const sent = await publish();
  // Wait for delivery to finish (or stop progressing), then let the paused sockets read what they got.
  let last = -1;
  for (let idle = 0; idle < 20; ) {
    const progress = await ask<{ minReceived: number; fastClosed: number }>('progress');
    if (progress.minReceived >= sent || progress.fastClosed > 0) break;
    idle = progress.minReceived === last ? idle + 1 : 0;
    last = progress.minReceived;
    await sleep(250);
  }
  worker.postMessage('resume');
  for (let i = 0; i < 40; i++) {
    if ((await ask<{ slowClosed: number }>('progress')).slowClosed >= slow) break;
    await sleep(250);
  }
  const report = await ask<Report>('report');
  await worker.terminate();
  return { ...report, sent };
}

function summarise(report: Report & { sent: number }) {
  let lost = 0;
  let outOfOrder = 0;
  for (const seq of report.sequences) {
    lost += report.sent - seq.length;
    for (let i = 1; i < seq.length; i++) if (seq[i]! <= seq[i - 1]!) outOfOrder += 1;
  }
  return { p99: percentile(report.latencies, 99), p50: percentile(report.latencies, 50), lost, outOfOrder };
}

async function auditServer(limits: Record<string, number> = {}): Promise<{ server: AuditServer; ds: DataSource; url: string; key: string; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'auditql-fanout-'));
  const ds = await openDatabase(createSqliteDataSource({ database: join(dir, 'fanout.sqlite') }));
  const { secret } = await createApiKey(ds, { name: 'bench', scopes: [...ALL_SCOPES] });
  const server = createAuditServer({ dataSource: ds, logging: false, limits: { subscriptionsPerPrincipal: 100_000, subscriptionStartsPerMinute: 100_000, ...limits } });
  const { port } = await server.start({ port: 0, host: '127.0.0.1' });
  return { server, ds, url: `ws://127.0.0.1:${port}/graphql`, key: secret, dir };
}

/** 1,000 graphql-ws subscribers, 10 new entries a second for 20 s, against bare yoga + createPubSub. */
export async function fanOut(): Promise<CaseResult[]> {
  const subscribers = scaled(1000);
  const seconds = Math.max(3, Math.min(20, scaled(20)));
  const rate = 10;
  const total = seconds * rate;

  // Baseline: a bare yoga server with graphql-ws and createPubSub, publishing the same payloads.
  const pubsub = createPubSub<{ sample: [{ seq: number; sentAt: number }] }>();
  const bare = createYoga({
    schema: createSchema({
      typeDefs: 'type Query { ok: Boolean } type Sample { seq: Int! sentAt: Float! } type Subscription { sample: Sample! }',
      resolvers: { Subscription: { sample: { subscribe: () => pubsub.subscribe('sample'), resolve: (p: unknown) => p } } },
    }),
    logging: false,
  });
  const bareHttp = createServer(bare);
  const bareWs = new WebSocketServer({ server: bareHttp, path: '/graphql' });
  useServer({ schema: bare.getEnveloped().schema }, bareWs);
  await new Promise<void>((resolve) => bareHttp.listen(0, '127.0.0.1', resolve));
  const bareUrl = `ws://127.0.0.1:${(bareHttp.address() as AddressInfo).port}/graphql`;
  const baseline = summarise(
    await runSubscribers(bareUrl, subscribers, 0, 'subscription { sample { seq sentAt } }', {}, async () => {
      for (let seq = 0; seq < total; seq++) {
        pubsub.publish('sample', { seq, sentAt: now() });
        await sleep(1000 / rate);
      }
      return total;
    }),
  );
  for (const client of bareWs.clients) client.terminate();
  bareWs.close();
  bareHttp.close();

  const { server, ds, url, key, dir } = await auditServer();
  const ours = summarise(
    await runSubscribers(url, subscribers, 0, 'subscription { auditLogAdded(filter: { resource: ["orders"] }) { id meta } }', { authorization: `Bearer ${key}` }, async () => {
      for (let seq = 0; seq < total; seq++) {
        await writeTransaction(ds, (manager) => writeAuditEntries(manager, [{ resource: 'orders', action: 'update', meta: { seq, sentAt: now() } }]));
        await sleep(1000 / rate);
      }
      return total;
    }),
  );
  await server.stop();
  await ds.destroy();
  rmSync(dir, { recursive: true, force: true });
  const ratio = ours.p99 / baseline.p99;
  return [
    {
      case: `fan-out (${subscribers} subscribers, ${rate}/s for ${seconds} s)`,
      metric: 'ms p99 publish→receive',
      value: ours.p99,
      baseline: baseline.p99,
      ratio,
      target: 'p99 ≤ 1.2× bare, 0 lost, 0 out of order',
      met: ratio <= 1.2 && ours.lost === 0 && ours.outOfOrder === 0,
      detail: `p50 ${ours.p50.toFixed(1)} ms (bare ${baseline.p50.toFixed(1)}); lost ${ours.lost} (bare ${baseline.lost}); out of order ${ours.outOfOrder}`,
    },
  ];
}

/** 2,000 entries as fast as possible with 100 live subscribers, 10 of which stop reading. */
export async function burst(): Promise<CaseResult[]> {
  const subscribers = Math.max(10, scaled(100));
  const slow = Math.max(1, Math.round(subscribers / 10));
  const total = Math.max(200, scaled(2000));
  const { server, ds, url, key, dir } = await auditServer({ subscriberQueue: 200 });
  // The paused subscribers ask for large entries, so that their sockets back up past the kernel's buffers.
  const payload = { blob: 'x'.repeat(60_000) };
  const report = await runSubscribers(
    url,
    subscribers,
    slow,
    'subscription { auditLogAdded { id meta } }',
    { authorization: `Bearer ${key}` },
    async () => {
      for (let seq = 0; seq < total; seq++) {
        await writeTransaction(ds, (manager) => writeAuditEntries(manager, [{ resource: 'orders', action: 'update', data: payload, meta: { seq, sentAt: now() } }]));
      }
      return total;
    },
    'subscription { auditLogAdded { id meta data } }',
  );
  const health = await fetch(url.replace('ws:', 'http:').replace('/graphql', '/health'));
  await server.stop();
  await ds.destroy();
  rmSync(dir, { recursive: true, force: true });
  const summary = summarise(report);
  const closedSlow = report.closeReasons.filter((r) => r === 'SLOW_CONSUMER').length;
  const closedFast = report.closeReasons.filter((r) => r.startsWith('fast:')).length;
  const ok = health.status === 200 && summary.lost === 0 && summary.outOfOrder === 0 && closedSlow === slow && closedFast === 0;
  return [
    {
      case: `burst (${total} entries, ${subscribers} subscribers, ${slow} slow)`,
      metric: 'fast subscribers complete',
      value: subscribers - slow,
      baseline: null,
      ratio: null,
      target: 'server up; fast get all in order; slow closed with a reason',
      met: ok,
      detail: `server ${health.status === 200 ? 'up' : 'DOWN'}; fast: lost ${summary.lost}, out of order ${summary.outOfOrder}, closed ${closedFast}; slow closed with SLOW_CONSUMER: ${closedSlow}/${slow}`,
    },
  ];
}
