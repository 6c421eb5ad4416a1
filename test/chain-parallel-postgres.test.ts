import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { verifyInParallel } from '../src/db/chain-workers.js';
import { GENESIS_HASH } from '../src/shared/chain/canonical.js';
import { seed } from './helpers/seed.js';
import { createPostgresDatabase, servicesAvailable } from './helpers/services.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * On PostgreSQL, as in a SQLite file (chain-parallel.test.ts), a long chain is recomputed on worker threads,
 * each with a connection of its own, and the answer is the one a single pass gives.
 */
const postgres = await servicesAvailable('test/chain-parallel-postgres.test.ts', 'postgres');

// Past the length from which the server verifies on threads (services/chain.ts).
const N = 20_500;
const EDITED = 12_345;
const VERIFY = '{ verifyAuditChain { valid checked headSequence firstInvalidSequence reason } }';

describe.skipIf(!postgres)('verification on worker threads, on PostgreSQL', () => {
  let app: TestApp;
  let database: Awaited<ReturnType<typeof createPostgresDatabase>>;
  let client: pg.Client;
  const head = async () => {
    const { rows } = await client.query<{ sequence: string; hash: string }>(`SELECT "sequence", "hash" FROM "audit_chain_head" WHERE "tenant_id" = 'default'`);
    return { sequence: Number(rows[0]!.sequence), hash: rows[0]!.hash };
  };
  const onThreads = async () =>
    verifyInParallel({ postgres: { connectionString: database.url }, tenant: 'default', anchor: { sequence: 0, hash: GENESIS_HASH }, head: await head(), checkpoints: [], workers: 2, rangeSize: 5000 });

  beforeAll(async () => {
    database = await createPostgresDatabase();
    app = await startTestApp({ postgresUrl: database.url });
    const start = Date.UTC(2026, 0, 1);
    // Personal values (author names) enter the hash as salted digests: the threads recompute those too.
    await seed(app.dataSource, Array.from({ length: N }, (_, i) => ({ resource: `r${i % 7}`, action: 'update', resourceId: String(i), authorId: `u${i % 50}`, authorName: `Author ${i % 50}`, createdAt: new Date(start + i * 1000) })));
    client = new pg.Client({ connectionString: database.url });
    await client.connect();
  }, 120_000);
  afterAll(async () => {
    await client?.end();
    await app?.close();
    await database?.drop();
  });

  it('finds an intact chain valid, as the server does', async () => {
    expect(await onThreads()).toMatchObject({ valid: true, checked: N, headSequence: N });
    const verified = await app.gql(VERIFY);
    expect(verified.data!.verifyAuditChain).toEqual({ valid: true, checked: N, headSequence: N, firstInvalidSequence: null, reason: null });
  }, 60_000);

  it('an edited entry: the threads do not vouch for the chain, and the server names the entry', async () => {
    await client.query(`UPDATE "audit_log" SET "resource" = 'forged' WHERE "tenant_id" = 'default' AND "sequence" = $1`, [EDITED]);
    expect(await onThreads()).toBeNull();
    const verified = await app.gql(VERIFY);
    expect(verified.data!.verifyAuditChain).toEqual({ valid: false, checked: EDITED, headSequence: EDITED - 1, firstInvalidSequence: EDITED, reason: 'HASH_MISMATCH' });
  }, 60_000);
});
