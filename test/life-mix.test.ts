import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedBulk } from './helpers/seed.js';
import { LOG_EVENT, startTestApp, type TestApp } from './helpers/test-app.js';
import { runCli } from './helpers/server-process.js';

// Export, erasure and retention one after another on the same log: after each step the chain verifies
// through the API, through `auditql verify` on the database, and offline on an export taken then.
const DAY = 86_400_000;
const ERASE = 'mutation($authorId: ID!) { eraseActor(authorId: $authorId, reason: "request 42") { erasedEntries } }';
const VERIFY = '{ verifyAuditChain { valid reason firstInvalidSequence anchorSequence checked } }';

const cli = runCli;

describe('export, erasure and retention in one life', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp({ retention: { days: 30 } });
    // A year-old history, then recent entries of two people through the API.
    seedBulk(app.file, 2_000, (i) => ({ created_at: Date.now() - 400 * DAY + i * 60_000, author_id: i % 2 ? 'ann' : 'bob', author_name: i % 2 ? 'Ann Old' : 'Bob Old' }));
    for (let i = 0; i < 20; i++) {
      const author = i % 2 ? { id: 'ann', name: 'Ann Recent', type: 'user' } : { id: 'bob', name: 'Bob Recent', type: 'user' };
      const written = await app.gql(LOG_EVENT, { input: { resource: 'orders', action: 'update', resourceId: String(i), author, data: { email: `${author.id}@mail.test`, total: i } } });
      expect(written.errors).toBeUndefined();
    }
  }, 120_000);
  afterAll(() => app?.close());

  /** The chain verifies through the API, the CLI on the database file, and offline on a fresh export. */
  async function expectVerifies(step: string) {
    const api = await app.gql(VERIFY);
    expect(api.data!.verifyAuditChain, step).toMatchObject({ valid: true, reason: null });
    const database = await cli(['verify'], { DATABASE_URL: `sqlite:${app.file}` });
    expect(database.code, `${step}: ${database.stdout}${database.stderr}`).toBe(0);
    const response = await fetch(`${app.url.replace('/graphql', '')}/export?format=ndjson`, { headers: { authorization: `Bearer ${app.adminKey}` } });
    expect(response.status).toBe(200);
    const file = join(app.dir, `${step}.ndjson`);
    writeFileSync(file, await response.text());
    const offline = await cli(['verify', '--file', file], { DATABASE_URL: `sqlite:${app.file}` });
    expect(offline.code, `${step}: ${offline.stdout}${offline.stderr}`).toBe(0);
    return api.data!.verifyAuditChain as { anchorSequence: number; checked: number };
  }

  it('verifies before anything happened', async () => {
    expect((await expectVerifies('start')).anchorSequence).toBe(0);
  });

  it('verifies after an erasure', async () => {
    const erased = await app.gql(ERASE, { authorId: 'ann' });
    expect(erased.errors).toBeUndefined();
    expect(erased.data!.eraseActor.erasedEntries).toBe(1_010);
    await expectVerifies('erased');
  });

  it('verifies after a purge, from the anchor it moved', async () => {
    const [purged] = await app.server.purgeExpired();
    expect(purged).toMatchObject({ count: 2_000, anchorSequence: 2_000 });
    const after = await expectVerifies('purged');
    expect(after.anchorSequence).toBe(2_000);
  });

  it('verifies after erasing again and purging again with nothing left to purge', async () => {
    const erased = await app.gql(ERASE, { authorId: 'bob' });
    expect(erased.data!.eraseActor.erasedEntries).toBe(10);
    expect(await app.server.purgeExpired()).toEqual([]);
    expect((await expectVerifies('again')).anchorSequence).toBe(2_000);
  });
});
