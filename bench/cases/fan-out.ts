import 'reflect-metadata';
import { EventEmitter } from 'node:events';
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
import { interleave, median, percentile, scaled, type CaseResult } from '../stats.js';
import type { DataSource } from 'typeorm';

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Report {
  latencies: number[];
  sequences: number[][];
  closeReasons: string[];
  lastReceivedAt: number;
}

/**
 * Resolves once the server has `n` subscriptions running (not only acknowledged connections): publishing
 * before the last ones are subscribed would count them as losses.
 */
type UntilSubscribed = (n: number) => Promise<void>;

/** For auditql's pubsub: until `n` subscriptions are live (rounds alternate with the other server's, so the last round's are long gone). */
function untilLive(pubsub: AuditServer['pubsub'], n: number): Promise<void> {
  return new Promise((resolve) => {
    const check = (count: number) => {
      if (count < n) return false;
      stop();
      resolve();
      return true;
    };
    const stop = pubsub.watchSubscribers(check);
    check(pubsub.subscriberCount);
  });
}

async function runSubscribers(url: string, count: number, slow: number, query: string, connectionParams: Record<string, unknown>, publish: () => Promise<number>, untilSubscribed: UntilSubscribed, slowQuery?: string) {
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
  await untilSubscribed(count);
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

/** A bare yoga server with graphql-ws and createPubSub, publishing what it is told. */
async function bareServer() {
  const pubsub = createPubSub<{ sample: [{ seq: number; sentAt: number }] }>();
  // Subscriptions started (counted where they start, so that nothing is added to the path of each event).
  const started = new EventEmitter();
  let count = 0;
  const bare = createYoga({
    schema: createSchema({
      typeDefs: 'type Query { ok: Boolean } type Sample { seq: Int! sentAt: Float! } type Subscription { sample: Sample! }',
      resolvers: {
        Subscription: {
          sample: {
            subscribe: () => {
              count++;
              started.emit('subscribed');
              return pubsub.subscribe('sample');
            },
            resolve: (p: unknown) => p,
          },
        },
      },
    }),
    logging: false,
  });
  const http = createServer(bare);
  const wss = new WebSocketServer({ server: http, path: '/graphql' });
  useServer({ schema: bare.getEnveloped().schema }, wss);
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return {
    url: `ws://127.0.0.1:${(http.address() as AddressInfo).port}/graphql`,
    publish: (seq: number) => pubsub.publish('sample', { seq, sentAt: now() }),
    /** Until `n` subscriptions started since the last call (each round has fresh subscribers). */
    untilSubscribed: (n: number) =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (count < n) return;
          started.off('subscribed', check);
          count = 0;
          resolve();
        };
        started.on('subscribed', check);
        check();
      }),
    stop: () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      http.close();
    },
  };
}

/**
 * 1,000 graphql-ws subscribers, 10 new entries a second, against bare yoga + graphql-ws + createPubSub
 * publishing the same number of payloads: rounds alternate between the two servers (fresh subscribers
 * each round), and the p99 ratio is taken per round.
 */
export async function fanOut(): Promise<CaseResult[]> {
  const subscribers = scaled(1000);
  const seconds = Math.max(1, Math.min(10, scaled(10)));
  const rate = 10;
  const total = seconds * rate;
  const bare = await bareServer();
  const { server, ds, url, key, dir } = await auditServer();
  const summaries = { ours: [] as Array<ReturnType<typeof summarise>>, bare: [] as Array<ReturnType<typeof summarise>> };
  const measured = await interleave({
    baseline: async () => {
      const summary = summarise(
        await runSubscribers(bare.url, subscribers, 0, 'subscription { sample { seq sentAt } }', {}, async () => {
          for (let seq = 0; seq < total; seq++) {
            bare.publish(seq);
            await sleep(1000 / rate);
          }
          return total;
        }, bare.untilSubscribed),
      );
      summaries.bare.push(summary);
      return summary.p99;
    },
    ours: async () => {
      const summary = summarise(
        await runSubscribers(url, subscribers, 0, 'subscription { auditLogAdded(filter: { resource: ["orders"] }) { id meta } }', { authorization: `Bearer ${key}` }, async () => {
          for (let seq = 0; seq < total; seq++) {
            await writeTransaction(ds, (manager) => writeAuditEntries(manager, [{ resource: 'orders', action: 'update', meta: { seq, sentAt: now() } }]));
            await sleep(1000 / rate);
          }
          return total;
        }, (n) => untilLive(server.pubsub, n)),
      );
      summaries.ours.push(summary);
      return summary.p99;
    },
  });
  bare.stop();
  await server.stop();
  await ds.destroy();
  rmSync(dir, { recursive: true, force: true });
  // The warm-up round is not counted.
  const counted = { ours: summaries.ours.slice(1), bare: summaries.bare.slice(1) };
  const lost = counted.ours.reduce((sum, s) => sum + s.lost, 0);
  const bareLost = counted.bare.reduce((sum, s) => sum + s.lost, 0);
  const outOfOrder = counted.ours.reduce((sum, s) => sum + s.outOfOrder, 0);
  const ratio = measured.median.ratio;
  return [
    {
      case: `fan-out (${subscribers} subscribers, ${rate}/s for ${seconds} s)`,
      metric: 'ms p99 publish→receive',
      value: measured.median.ours,
      baseline: measured.median.baseline,
      ratio,
      spread: measured.spread,
      target: 'p99 ≤ 1.0× bare yoga, 0 lost, 0 out of order',
      met: ratio <= 1.0 && lost === 0 && outOfOrder === 0,
      detail: `${measured.ours.length} rounds each, interleaved, fresh subscribers per round; p50 ${median(counted.ours.map((s) => s.p50)).toFixed(1)} ms (bare ${median(counted.bare.map((s) => s.p50)).toFixed(1)}); lost ${lost} (bare ${bareLost}); out of order ${outOfOrder}`,
    },
  ];
}

/**
 * 2,000 entries written as fast as possible with 100 live subscribers, 10 of which stop reading: what is
 * delivered — fast subscribers that received every entry in order, slow ones closed with SLOW_CONSUMER,
 * how long the burst took to reach the last fast subscriber, and the process's peak memory meanwhile.
 * No baseline: bare yoga + createPubSub falls over on such a burst (> 1,024 queued per subscriber).
 */
export async function burst(): Promise<CaseResult[]> {
  const subscribers = Math.max(10, scaled(100));
  const slow = Math.max(1, Math.round(subscribers / 10));
  const fast = subscribers - slow;
  const total = Math.max(200, scaled(2000));
  const { server, ds, url, key, dir } = await auditServer({ subscriberQueue: 200 });
  // The paused subscribers ask for large entries, so that their sockets back up past the kernel's buffers.
  const payload = { blob: 'x'.repeat(60_000) };
  const rssBefore = process.memoryUsage().rss;
  let peak = rssBefore;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  let startedAt = 0;
  let writtenAt = 0;
  const report = await runSubscribers(
    url,
    subscribers,
    slow,
    'subscription { auditLogAdded { id meta } }',
    { authorization: `Bearer ${key}` },
    async () => {
      startedAt = now();
      for (let seq = 0; seq < total; seq++) {
        await writeTransaction(ds, (manager) => writeAuditEntries(manager, [{ resource: 'orders', action: 'update', data: payload, meta: { seq, sentAt: now() } }]));
      }
      writtenAt = now();
      return total;
    },
    (n) => untilLive(server.pubsub, n),
    'subscription { auditLogAdded { id meta data } }',
  );
  clearInterval(sampler);
  const health = await fetch(url.replace('ws:', 'http:').replace('/graphql', '/health'));
  await server.stop();
  await ds.destroy();
  rmSync(dir, { recursive: true, force: true });
  const summary = summarise(report);
  const complete = report.sequences.filter((seq) => seq.length === total && seq.every((n, i) => n === i)).length;
  const closedSlow = report.closeReasons.filter((r) => r === 'SLOW_CONSUMER').length;
  const closedFast = report.closeReasons.filter((r) => r.startsWith('fast:')).length;
  const deliveredMs = report.lastReceivedAt - startedAt;
  const ok = health.status === 200 && complete === fast && closedSlow === slow && closedFast === 0;
  return [
    {
      case: `burst (${total} entries, ${subscribers} subscribers, ${slow} slow)`,
      metric: `of ${fast} fast subscribers got every entry in order`,
      value: complete,
      baseline: null,
      ratio: null,
      spread: `slow closed ${closedSlow}/${slow}`,
      target: 'server up; every fast subscriber gets all in order; every slow one closed with SLOW_CONSUMER',
      met: ok,
      detail: `server ${health.status === 200 ? 'up' : 'DOWN'}; written in ${(writtenAt - startedAt).toFixed(0)} ms, delivered to the last fast subscriber after ${deliveredMs.toFixed(0)} ms (${Math.round((total * fast) / (deliveredMs / 1000)).toLocaleString('en')} deliveries/s); p99 ${summary.p99.toFixed(0)} ms; fast: lost ${summary.lost}, out of order ${summary.outOfOrder}, closed ${closedFast}; peak RSS +${((peak - rssBefore) / 1e6).toFixed(0)} MB (server and subscriber thread)`,
    },
  ];
}
