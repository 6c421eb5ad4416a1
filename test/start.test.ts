import Database from 'better-sqlite3';
import { generateKeyPairSync } from 'node:crypto';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createPostgresDatabase, REDIS_URL, servicesAvailable, uniqueName } from './helpers/services.js';

const dir = mkdtempSync(join(tmpdir(), 'auditql-start-'));
const services = await servicesAvailable('test/start.test.ts (PostgreSQL and Redis)', 'postgres', 'redis');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Started {
  child: ChildProcess;
  url: Promise<string>;
  exited: Promise<number | null>;
  output(): string;
}

/** Runs the server as users do: `npm start` (npm → node, no wrapper between), or the compiled CLI directly. */
function startServer(env: Record<string, string>, how: 'npm' | 'cli' = 'cli'): Started {
  const [command, args] = how === 'npm' ? ['npm', ['start', '--silent']] : [process.execPath, ['dist/cjs/cli.js', 'serve']];
  const child = spawn(command as string, args as string[], { env: { ...process.env, NODE_ENV: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const url = new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (chunk) => {
      output += chunk;
      const match = /listening on (http:\/\/[^\s"]+)/.exec(output);
      if (match) resolve(match[1]!);
    });
    child.stderr!.on('data', (chunk) => (output += chunk));
    child.on('exit', (code) => reject(new Error(`exited with ${code}: ${output}`)));
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, url, exited, output: () => output };
}

/** Processes whose parent is `pid`. */
function childrenOf(pid: number): number[] {
  const ps = spawnSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' });
  return ps.stdout.split('\n').map((line) => Number(line.trim())).filter((n) => n > 0);
}

const post = (url: string, query: string, key?: string) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) }, body: JSON.stringify({ query }) });

describe('the server process', () => {
  it('starts on a new SQLite file, prints an admin key once, serves, and closes cleanly on SIGTERM', async () => {
    const file = join(dir, 'nested', 'audit.sqlite');
    const server = startServer({ PORT: '0', HOST: '127.0.0.1', DATABASE_URL: `sqlite:${file}` });
    const url = await server.url;
    expect(existsSync(file)).toBe(true);
    const key = /^\s+(aql_\S+)$/m.exec(server.output())?.[1];
    expect(key).toBeDefined();
    expect((await (await post(url, '{ auditLogs { totalCount } }')).json()).errors[0].extensions.code).toBe('UNAUTHENTICATED');
    expect((await (await post(url, 'mutation { logEvent(input: { resource: "posts", action: "create" }) { id } }', key)).json()).data.logEvent.id).toBe('1');
    // Production is the default: no GraphiQL, no introspection.
    expect(await (await fetch(url, { headers: { accept: 'text/html' } })).text()).not.toMatch(/graphiql/i);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(server.output()).toMatch(/SIGTERM received/);
    // A second start on the same database creates no new key.
    const again = startServer({ PORT: '0', HOST: '127.0.0.1', DATABASE_URL: `sqlite:${file}` });
    await again.url;
    expect(again.output()).not.toMatch(/aql_/);
    again.child.kill('SIGTERM');
    expect(await again.exited).toBe(0);
  });

  it('never mints a new admin key into a used database: with every key revoked it refuses to start', async () => {
    const file = join(dir, 'revoked', 'audit.sqlite');
    const first = startServer({ PORT: '0', HOST: '127.0.0.1', DATABASE_URL: `sqlite:${file}` });
    await first.url;
    const id = /aql_([a-z0-9]{16})_/.exec(first.output())![1]!;
    first.child.kill('SIGTERM');
    await first.exited;
    const revoke = spawnSync(process.execPath, ['dist/cjs/cli.js', 'apikey', 'revoke', id], { env: { ...process.env, DATABASE_URL: `sqlite:${file}` }, encoding: 'utf8' });
    expect(revoke.stdout).toMatch(`revoked ${id}`);
    // The revocation is itself evidence, authored by the operator's account.
    const db = new Database(file, { readonly: true });
    const recorded = db.prepare(`SELECT action, resource_id, author_id FROM audit_log WHERE resource = 'api_key'`).all();
    db.close();
    expect(recorded).toEqual([{ action: 'revoke_key', resource_id: id, author_id: expect.stringMatching(/^cli:/) }]);
    const second = startServer({ PORT: '0', HOST: '127.0.0.1', DATABASE_URL: `sqlite:${file}` });
    await expect(second.url).rejects.toThrow(/no active API key and no JWT_SECRET/);
    expect(await second.exited).toBe(1);
    expect(second.output()).not.toMatch(/aql_/);
  });

  it('is the process `npm start` signals: SIGTERM to npm leaves nothing running or listening', async () => {
    const server = startServer({ PORT: '0', HOST: '127.0.0.1', DATABASE_URL: 'sqlite::memory:' }, 'npm');
    const url = await server.url;
    // npm runs node itself (`exec`), with no shell or loader in between.
    const [node, ...others] = childrenOf(server.child.pid!);
    expect(others).toEqual([]);
    expect(spawnSync('ps', ['-o', 'args=', '-p', String(node)], { encoding: 'utf8' }).stdout).toMatch(/^node .*cli\.js serve/);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(spawnSync('ps', ['-p', String(node)]).status).not.toBe(0);
    await expect(fetch(url.replace('/graphql', '/live'))).rejects.toThrow();
  });

  it('writes checkpoints on the CHECKPOINT_INTERVAL schedule, for the chain head, and logs each one', async () => {
    const file = join(dir, 'scheduled.sqlite');
    const server = startServer({ PORT: '0', HOST: '127.0.0.1', DATABASE_URL: `sqlite:${file}`, CHECKPOINT_INTERVAL: '100ms', META_AUDIT: 'off' });
    const url = await server.url;
    const key = /^\s+(aql_\S+)$/m.exec(server.output())?.[1];
    // Resolves once the log has a checkpoint line for `sequence`, with every checkpoint line so far.
    const logged = (sequence: number) =>
      new Promise<Array<{ tenant: string; sequence: number; hash: string }>>((resolve) => {
        const check = () => {
          const lines = server.output().split('\n').slice(0, -1).filter((line) => line.includes('"checkpoint written"')).map((line) => JSON.parse(line));
          if (lines.some((line) => line.sequence === sequence)) {
            server.child.stdout!.off('data', check);
            resolve(lines);
          }
        };
        server.child.stdout!.on('data', check);
        check();
      });
    const logEvent = async () => (await (await post(url, 'mutation { logEvent(input: { resource: "posts", action: "create" }) { sequence hash } }', key)).json()).data.logEvent;
    const first = await logEvent();
    const [written] = await logged(first.sequence);
    expect(written).toMatchObject({ tenant: 'default', sequence: first.sequence, hash: first.hash });
    // Later ticks sign each new head once, never one already signed.
    await logEvent();
    const second = await logEvent();
    const lines = await logged(second.sequence);
    const sequences = lines.map((line) => line.sequence);
    expect(sequences[0]).toBe(first.sequence);
    expect(sequences.at(-1)).toBe(second.sequence);
    expect(new Set(sequences).size).toBe(sequences.length);
    const listed = await (await post(url, '{ auditCheckpoints(first: 10) { edges { node { sequence hash } } } }', key)).json();
    expect(listed.data.auditCheckpoints.edges.map((edge: { node: { sequence: number } }) => edge.node.sequence).sort((a: number, b: number) => a - b)).toEqual(sequences);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
  });

  it('runs on sqlite::memory:', async () => {
    const server = startServer({ PORT: '0', HOST: '127.0.0.1', DATABASE_URL: 'sqlite::memory:' });
    const url = await server.url;
    expect((await fetch(url.replace('/graphql', '/health'))).status).toBe(200);
    server.child.kill('SIGINT');
    expect(await server.exited).toBe(0);
  });

  it.skipIf(!services)('starts on PostgreSQL with Redis from the README\'s command, ready, and closes cleanly on SIGTERM', async () => {
    const database = await createPostgresDatabase();
    try {
      const server = startServer({ PORT: '0', HOST: '127.0.0.1', DATABASE_URL: database.url, REDIS_URL, REDIS_PREFIX: uniqueName('auditql_test') }, 'npm');
      const url = await server.url;
      const key = /^\s+(aql_\S+)$/m.exec(server.output())?.[1];
      expect(key).toBeDefined();
      // The log names the database without credentials.
      expect(server.output()).toMatch(/database: postgres:\/\/127\.0\.0\.1:5432\//);
      expect((await (await post(url, 'mutation { logEvent(input: { resource: "posts", action: "create" }) { id } }', key)).json()).data.logEvent.id).toBe('1');
      const ready = await fetch(url.replace('/graphql', '/ready'));
      expect(await ready.json()).toMatchObject({ status: 'ready', database: 'up', migrations: 'applied', redis: 'up' });
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
    } finally {
      await database.drop();
    }
  });

  it.skipIf(!services)('on PostgreSQL without CHECKPOINT_PRIVATE_KEY, keeps the key it generates in the database: checkpoints verify after a restart', async () => {
    const database = await createPostgresDatabase();
    try {
      const env = { PORT: '0', HOST: '127.0.0.1', DATABASE_URL: database.url, META_AUDIT: 'off' };
      const first = startServer(env);
      const url = await first.url;
      expect(first.output()).toMatch(/generated and kept in the database \(key id [\w-]+\)/);
      const key = /^\s+(aql_\S+)$/m.exec(first.output())![1]!;
      await post(url, 'mutation { logEvent(input: { resource: "posts", action: "create" }) { id } }', key);
      const signed = (await (await post(url, 'mutation { createCheckpoint { sequence } } ', key)).json()).data.createCheckpoint;
      expect(signed.sequence).toBe(1);
      const keyId = (await (await post(url, '{ checkpointPublicKey { keyId } }', key)).json()).data.checkpointPublicKey.keyId;
      first.child.kill('SIGTERM');
      expect(await first.exited).toBe(0);

      const second = startServer(env);
      const again = await second.url;
      expect((await (await post(again, '{ checkpointPublicKey { keyId } }', key)).json()).data.checkpointPublicKey.keyId).toBe(keyId);
      const verified = await (await post(again, '{ verifyAuditChain { valid checkpointsChecked reason } }', key)).json();
      expect(verified.data.verifyAuditChain).toEqual({ valid: true, checkpointsChecked: 1, reason: null });
      second.child.kill('SIGTERM');
      expect(await second.exited).toBe(0);

      // A key configured later signs from then on; what the stored key signed stays trusted.
      const configured = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      const third = startServer({ ...env, CHECKPOINT_PRIVATE_KEY: configured });
      const last = await third.url;
      const now = (await (await post(last, '{ checkpointPublicKey { keyId } verifyAuditChain { valid checkpointsChecked } }', key)).json()).data;
      expect(now.checkpointPublicKey.keyId).not.toBe(keyId);
      expect(now.verifyAuditChain).toEqual({ valid: true, checkpointsChecked: 1 });
      third.child.kill('SIGTERM');
      expect(await third.exited).toBe(0);
    } finally {
      await database.drop();
    }
  });

  it.each([
    [{ PORT: 'eighty', DATABASE_URL: 'sqlite::memory:' }, /PORT must be an integer/],
    [{ DATABASE_URL: 'mysql://db/audit' }, /DATABASE_URL: SQLite \(sqlite:PATH, sqlite::memory:\) or PostgreSQL \(postgres:\/\/…\) are supported, got "mysql:"/],
    [{ DATABASE_URL: 'sqlite::memory:', REDIS_URL: 'localhost:6379' }, /REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL/],
    [{ DATABASE_URL: 'sqlite::memory:', SQLITE_SYNCHRONOUS: 'OFF' }, /SQLITE_SYNCHRONOUS must be FULL or NORMAL/],
    [{ DATABASE_URL: 'sqlite::memory:', JWT_SECRET: 'short' }, /JWT_SECRET must be at least 32 characters/],
    [{ DATABASE_URL: 'sqlite::memory:', CHECKPOINT_PRIVATE_KEY: 'not a key' }, /CHECKPOINT_PRIVATE_KEY must be an Ed25519 private key in PEM form/],
    [{ DATABASE_URL: 'sqlite::memory:', CHECKPOINT_PRIVATE_KEY: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() }, /CHECKPOINT_PRIVATE_KEY must be an Ed25519 key, got ec/],
    [{ DATABASE_URL: 'sqlite::memory:', CHECKPOINT_INTERVAL: 'hourly' }, /CHECKPOINT_INTERVAL must be a duration/],
    [{ DATABASE_URL: 'sqlite::memory:', META_AUDIT: 'some' }, /META_AUDIT must be all, changes or off/],
    [{ DATABASE_URL: 'sqlite::memory:', PERSONAL_FIELDS: 'email, /[/' }, /PERSONAL_FIELDS: \/\[\/ is not a valid regular expression/],
  ])('refuses a bad setting at start with a message naming it (%o)', async (env, message) => {
    const server = startServer({ PORT: '0', ...env });
    await expect(server.url).rejects.toThrow(message);
    expect(await server.exited).toBe(1);
  });
});
