import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'auditql-start-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the server the way `npm start` does, as a separate process. */
function startServer(env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const url = new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      output += chunk;
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match) resolve(match[1]!);
    });
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on('exit', (code) => reject(new Error(`exited with ${code}: ${output}`)));
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, url, exited, output: () => output };
}

describe('the server process', () => {
  it('starts on a new SQLite file, logs its URL, serves, and closes cleanly on SIGTERM', async () => {
    const file = join(dir, 'nested', 'audit.sqlite');
    const server = startServer({ PORT: '0', HOST: '127.0.0.1', DATABASE_URL: `sqlite:${file}` });
    const url = await server.url;
    expect(existsSync(file)).toBe(true);
    // With nothing configured, the first start creates an admin key and prints it once.
    const key = /^\s+(aql_\S+)$/m.exec(server.output())?.[1];
    expect(key).toBeDefined();
    const anonymous = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ auditLogs { totalCount } }' }) });
    expect((await anonymous.json()).errors[0].extensions.code).toBe('UNAUTHENTICATED');
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ query: 'mutation { logEvent(input: { resource: "posts", action: "create" }) { id } }' }),
    });
    expect((await response.json()).data.logEvent.id).toBe('1');
    const graphiql = await fetch(url, { headers: { accept: 'text/html' } });
    expect(await graphiql.text()).toMatch(/graphiql/i);
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

  it('runs on sqlite::memory:', async () => {
    const server = startServer({ PORT: '0', HOST: '127.0.0.1', DATABASE_URL: 'sqlite::memory:' });
    const url = await server.url;
    expect((await fetch(url.replace('/graphql', '/health'))).status).toBe(200);
    server.child.kill('SIGINT');
    expect(await server.exited).toBe(0);
  });

  it.each([
    [{ PORT: 'eighty', DATABASE_URL: 'sqlite::memory:' }, /PORT must be an integer/],
    [{ DATABASE_URL: 'postgres://db/audit' }, /DATABASE_URL: only SQLite is supported/],
    [{ DATABASE_URL: 'sqlite::memory:', SQLITE_SYNCHRONOUS: 'OFF' }, /SQLITE_SYNCHRONOUS must be FULL or NORMAL/],
    [{ DATABASE_URL: 'sqlite::memory:', JWT_SECRET: 'short' }, /JWT_SECRET must be at least 32 characters/],
  ])('refuses a bad setting at start with a message naming it (%o)', async (env, message) => {
    const server = startServer({ PORT: '0', ...env });
    await expect(server.url).rejects.toThrow(message);
    expect(await server.exited).toBe(1);
  });
});
