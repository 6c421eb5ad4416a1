import { statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PurgeProgress } from '../src/services/retention.js';
import { seedBulk } from './helpers/seed.js';
import { LOG_EVENT, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * Entries purged while the server keeps answering: 1M (RETENTION_TEST_ROWS overrides), a purge of thousands
 * of batches, as the retention issue asks; about five minutes on a busy 2-core machine. The figures (batch
 * times, `/live` latency) are in the bench (`npm run bench -- --case purge`).
 */
const ROWS = Number(process.env.RETENTION_TEST_ROWS ?? 1_000_000);
/** Generous: a purge batch aims at a few milliseconds; a request answered within this is "responsive". */
const BOUND_MS = 1000;
const DAY = 86_400_000;

describe(`a purge of ${ROWS} entries`, () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp({ retention: { days: 30 } });
    const start = Date.now() - 400 * DAY;
    seedBulk(app.file, ROWS, (i) => ({ created_at: start + i * 1000 }));
  }, 600_000);
  afterAll(() => app?.close());

  it('leaves /live and logEvent answering within a bound while it runs', async () => {
    // The commits of the purge do not copy the log back into the file (a thread does, between batches), and
    // the connection's own setting is back afterwards.
    const handle = (app.dataSource.driver as unknown as { databaseConnection: { pragma(source: string, options?: { simple: boolean }): unknown } }).databaseConnection;
    handle.pragma('wal_autocheckpoint = 777');
    const autocheckpoints = new Set<unknown>();
    // Statement journals in memory for the run (MEMORY = 2), and back to the default (0) after it.
    const tempStores = new Set<unknown>();
    const probes: Array<Promise<{ live: number; write: number; done: boolean }>> = [];
    let finished = false;
    // Probe at the first batch and at a quarter, half and three quarters of the way, as the purge reports them.
    const marks = [1, ROWS / 4, ROWS / 2, (ROWS * 3) / 4];
    const onProgress = (progress: PurgeProgress) => {
      autocheckpoints.add(handle.pragma('wal_autocheckpoint', { simple: true }));
      tempStores.add(handle.pragma('temp_store', { simple: true }));
      while (marks.length > 0 && progress.purged >= marks[0]!) {
        marks.shift();
        probes.push(
          (async () => {
            const t0 = performance.now();
            const live = await fetch(app.url.replace('/graphql', '/live'));
            expect(live.status).toBe(200);
            const t1 = performance.now();
            const written = await app.gql(LOG_EVENT, { input: { resource: 'during-purge', action: 'create' } });
            expect(written.errors).toBeUndefined();
            const t2 = performance.now();
            return { live: t1 - t0, write: t2 - t1, done: finished };
          })(),
        );
      }
    };
    const results = await app.server.purgeExpired({ onProgress });
    finished = true;
    expect(results[0]).toMatchObject({ count: ROWS, anchorSequence: ROWS });
    expect([...autocheckpoints]).toEqual([0]);
    expect(handle.pragma('wal_autocheckpoint', { simple: true })).toBe(777);
    expect([...tempStores]).toEqual([2]);
    expect(handle.pragma('temp_store', { simple: true })).toBe(0);
    // And the log was started over as it went: removing an entry rewrites a leaf of every index, so without
    // that the log would hold every page the purge wrote (hundreds of megabytes here).
    expect(statSync(`${app.file}-wal`).size).toBeLessThan(64 * 1024 * 1024);
    const answered = await Promise.all(probes);
    expect(answered).toHaveLength(4);
    for (const probe of answered) {
      expect(probe.live).toBeLessThan(BOUND_MS);
      expect(probe.write).toBeLessThan(BOUND_MS);
    }
    // At least the probes of the first three marks were answered while the purge was still running.
    expect(answered.slice(0, 3).every((p) => !p.done)).toBe(true);
    const verified = await app.gql('{ verifyAuditChain { valid anchorSequence } }');
    expect(verified.data!.verifyAuditChain).toEqual({ valid: true, anchorSequence: ROWS });
  }, 900_000);
});
