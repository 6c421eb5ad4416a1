import { afterAll, describe, expect, it } from 'vitest';
import { seedBulk } from './helpers/seed.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

const DAY = 86_400_000;
const EXPIRED = 6000;

/**
 * verifyAuditChain reads the chain in batches, each in a snapshot of its own, while retention removes
 * entries and moves the chain's anchor between its own batches: the chain is intact all along, and every
 * verification must say so (a false "broken" would also be stored as the verification's own entry).
 */
describe('verification while a purge runs', () => {
  let app: TestApp;
  afterAll(() => app?.close());

  it('finds the chain valid every time', async () => {
    app = await startTestApp({ retention: { days: 30, maxBatch: 40, batchTargetMs: 1 } });
    seedBulk(app.file, EXPIRED, (i) => ({ created_at: Date.now() - 400 * DAY + i * 1000 }));
    let purging = true;
    let batches = 0;
    const purge = app.server.purgeExpired({ onProgress: () => batches++ }).finally(() => (purging = false));
    const answers: Array<{ valid: boolean; reason: string | null }> = [];
    // Verifications during which the purge removed a batch or more: the case this test is about. How many
    // fit in the purge depends on the machine, not on the code; one at least always does (the purge has
    // 150 batches or more, each followed by a pause as long as itself).
    let overlapped = 0;
    while (purging) {
      const before = batches;
      const verified = await app.gql('{ verifyAuditChain { valid reason firstInvalidSequence detail } }');
      answers.push(verified.data!.verifyAuditChain);
      if (batches > before) overlapped++;
    }
    const [result] = await purge;
    expect(result).toMatchObject({ count: EXPIRED });
    expect(overlapped).toBeGreaterThan(0);
    expect(answers.filter((answer) => !answer.valid)).toEqual([]);
  });
});
