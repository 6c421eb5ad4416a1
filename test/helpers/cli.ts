import { spawn } from 'node:child_process';

/**
 * Runs the built CLI (dist/cjs/cli.js) as a user would; resolves with its exit code and its output (stdout
 * and stderr together). DATABASE_URL is an in-memory database unless `env` names one.
 */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['dist/cjs/cli.js', ...args], { env: { ...process.env, DATABASE_URL: 'sqlite::memory:', ...env } });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.stderr.on('data', (chunk) => (out += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}
