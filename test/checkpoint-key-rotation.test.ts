import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { GENERATED_KEY_FILE } from '../src/services/checkpoint-key.js';
import { logEvents, startTestApp, type TestApp } from './helpers/test-app.js';
import { runCli as cli } from './helpers/cli.js';


const VERIFY = '{ verifyAuditChain { valid reason checkpointsChecked } }';
const pem = () => generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();

/**
 * The checkpoint key is replaced (a configured key after the generated one, or one configured key after
 * another): the checkpoints the old key signed must still be trusted, by the server and by the CLI.
 */
describe('checkpoints signed by a key that was replaced', () => {
  const dir = mkdtempSync(join(tmpdir(), 'auditql-key-rotation-'));
  const database = join(dir, 'audit.sqlite');
  const ownKey = pem();
  let app: TestApp | undefined;
  afterAll(async () => {
    await app?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function restart(evidence: { checkpointPrivateKey?: string; checkpointPreviousKeys?: string } = {}) {
    await app?.close();
    app = await startTestApp({ database, evidence });
    return app;
  }

  it('stay trusted when a configured key replaces the generated one (kept next to the database)', async () => {
    const first = await restart();
    await logEvents(first, [{ resource: 'posts', action: 'create' }]);
    expect((await first.gql('mutation { createCheckpoint { sequence } }')).errors).toBeUndefined();

    const second = await restart({ checkpointPrivateKey: ownKey });
    await logEvents(second, [{ resource: 'posts', action: 'update' }]);
    expect((await second.gql('mutation { createCheckpoint { sequence } }')).errors).toBeUndefined();
    expect((await second.gql(VERIFY)).data!.verifyAuditChain).toEqual({ valid: true, reason: null, checkpointsChecked: 2 });

    const published = (await (await fetch(second.url.replace('/graphql', '/.well-known/auditql/checkpoint-key'))).json()) as { keyId: string; previous: Array<{ keyId: string }> };
    expect(published.previous).toHaveLength(1);
    expect(published.previous[0]!.keyId).not.toBe(published.keyId);

    // The downloaded file carries both keys; the CLI holds both checkpoints with them.
    const download = await fetch(second.url.replace('/graphql', '/checkpoints'), { headers: { authorization: `Bearer ${second.adminKey}` } });
    const checkpoints = join(dir, 'checkpoints.json');
    writeFileSync(checkpoints, await download.text());
    await second.dataSource.query('PRAGMA wal_checkpoint(TRUNCATE)');
    const held = await cli(['verify', '--database', database, '--checkpoints', checkpoints]);
    expect(held.out).toMatch(/^default: valid, .*, 2 checkpoints held$/m);
    expect(held.code).toBe(0);
  });

  it('stay trusted when the old key is named in CHECKPOINT_PREVIOUS_KEYS, and only then', async () => {
    const generated = readFileSync(join(dir, GENERATED_KEY_FILE), 'utf8');
    renameSync(join(dir, GENERATED_KEY_FILE), join(dir, 'elsewhere.pem'));
    const forgotten = await restart({ checkpointPrivateKey: pem() });
    expect((await forgotten.gql(VERIFY)).data!.verifyAuditChain).toMatchObject({ valid: false, reason: 'CHECKPOINT_SIGNATURE' });

    const rotated = await restart({ checkpointPrivateKey: pem(), checkpointPreviousKeys: `${generated}${ownKey}` });
    expect((await rotated.gql(VERIFY)).data!.verifyAuditChain).toEqual({ valid: true, reason: null, checkpointsChecked: 2 });
  });

  it('refuses CHECKPOINT_PREVIOUS_KEYS that hold no Ed25519 key, and reads those that do (escaped newlines too)', () => {
    expect(() => loadConfig({ CHECKPOINT_PREVIOUS_KEYS: 'not a key' })).toThrow(/CHECKPOINT_PREVIOUS_KEYS must hold one or more Ed25519 keys/);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'pem', type: 'spki' }).toString();
    expect(() => loadConfig({ CHECKPOINT_PREVIOUS_KEYS: rsa })).toThrow(/CHECKPOINT_PREVIOUS_KEYS: a checkpoint key must be Ed25519/);
    const two = `${ownKey}${pem()}`;
    expect(loadConfig({ CHECKPOINT_PREVIOUS_KEYS: two.replace(/\n/g, '\\n') }).evidence.checkpointPreviousKeys).toBe(two);
  });
});
