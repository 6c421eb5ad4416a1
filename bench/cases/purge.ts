import 'reflect-metadata';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createAuditServer } from '../../src/app.js';
import { ALL_SCOPES } from '../../src/auth/principal.js';
import { createSqliteDataSource, openDatabase } from '../../src/db/data-source.js';
import { createApiKey } from '../../src/services/api-keys.js';
import { chainedDatabase } from './chain.js';
import { median, percentile, scaled, type CaseResult } from '../stats.js';

/** Sequential GET /live until `until` resolves; the latencies in ms. */
async function probeLive(base: string, until: Promise<unknown>): Promise<number[]> {
  let done = false;
  void until.finally(() => (done = true));
  const latencies: number[] = [];
  while (!done) {
    const t0 = performance.now();
    const response = await fetch(`${base}/live`);
    await response.arrayBuffer();
    latencies.push(performance.now() - t0);
  }
  return latencies;
}

/**
 * Retention on a server: N typical chained entries, all expired, purged through the server's own purge while
 * a client asks /live back to back and another writes through logEvent. Baseline: the same probes for as
 * long with no purge running. Figures: entries removed per second, the longest batch transaction (commit
 * included), /live p99 during the purge against without.
 */
export async function purge(): Promise<CaseResult[]> {
  const n = scaled(1_000_000);
  const dir = mkdtempSync(join(tmpdir(), 'auditql-bench-purge-'));
  const file = join(dir, 'purge.sqlite');
  await chainedDatabase(file, n);
  const dataSource = await openDatabase(createSqliteDataSource({ database: file }));
  const { secret } = await createApiKey(dataSource, { name: 'bench', scopes: [...ALL_SCOPES] });
  const server = createAuditServer({ dataSource, logging: false, evidence: { checkpointIntervalMs: 0, metaAudit: { mode: 'off' } }, retention: { days: 30, intervalMs: 0 }, store: { ownsConnection: true } });
  const { url } = await server.start({ port: 0, host: '127.0.0.1' });
  const base = url.replace('/graphql', '');
  // As in a running server, the search index has caught up before the purge starts.
  await server.indexSearch();
  const writes: number[] = [];
  const writeLoop = async (until: Promise<unknown>) => {
    let done = false;
    void until.finally(() => (done = true));
    while (!done) {
      const t0 = performance.now();
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}` },
        body: JSON.stringify({ query: 'mutation { logEvent(input: { resource: "bench", action: "create" }) { id } }' }),
      });
      await response.arrayBuffer();
      writes.push(performance.now() - t0);
    }
  };

  const started = performance.now();
  const held: number[] = [];
  const purging = server.purgeExpired({ onProgress: (progress) => held.push(progress.heldMs) });
  const [live, , results] = await Promise.all([probeLive(base, purging), writeLoop(purging), purging]);
  const seconds = (performance.now() - started) / 1000;
  const result = results[0]!;
  // Baseline: the same probes, for as long (capped at 20 s), with nothing purging.
  const quiet = new Promise((resolve) => setTimeout(resolve, Math.min(seconds, 20) * 1000));
  const baseline = await probeLive(base, quiet);
  await server.stop();
  await dataSource.destroy();
  const db = new Database(file, { readonly: true });
  const left = (db.prepare(`SELECT COUNT(*) AS n FROM audit_log WHERE resource <> 'bench' AND action <> 'retention_purge'`).get() as { n: number }).n;
  db.close();
  const size = statSync(file).size;
  rmSync(dir, { recursive: true, force: true });
  const p99 = percentile(live, 99);
  const p99Quiet = percentile(baseline, 99);
  return [
    {
      case: `purge ${n} entries (server running)`,
      metric: 'entries/s',
      value: Math.round(result.count / seconds),
      baseline: null,
      ratio: null,
      target: 'longest hold of the writer by a batch ≤ 20 ms',
      met: result.longestHeldMs <= 20 && left === 0,
      detail: `${result.count} removed in ${seconds.toFixed(1)} s, ${result.batches} batches; writer held per batch: median ${median(held).toFixed(1)} ms, p99 ${percentile(held, 99).toFixed(1)} ms, longest ${result.longestHeldMs.toFixed(1)} ms (its statements ${result.longestStatementsMs.toFixed(1)} ms); longest batch with queueing ${result.longestBatchMs.toFixed(1)} ms; writes held back while the log was started over: longest ${result.longestWritePauseMs.toFixed(1)} ms; ${writes.length} logEvents meanwhile, median ${median(writes).toFixed(1)} ms, p99 ${percentile(writes, 99).toFixed(1)} ms; file ${(size / 1e6).toFixed(0)} MB after`,
    },
    {
      case: `/live during a purge of ${n}`,
      metric: 'ms p99',
      value: p99,
      baseline: p99Quiet,
      ratio: p99 / p99Quiet,
      target: 'p99 ≤ 50 ms',
      met: p99 <= 50,
      detail: `${live.length} requests during the purge (median ${median(live).toFixed(2)} ms), ${baseline.length} without (median ${median(baseline).toFixed(2)} ms)`,
    },
  ];
}
