import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { deferred } from './test-app.js';

export interface ServerProcess {
  child: ChildProcess;
  /** The GraphQL endpoint, once the server listens. */
  url: string;
  /** The admin key the first start printed. */
  adminKey: string;
  exited: Promise<number | null>;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Resolves when the output matches `pattern` (already or later). */
  waitFor(pattern: RegExp): Promise<string>;
  /** Resident set size of the server process in bytes, read from /proc; 0 once it has exited. */
  rss(): number;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** The compiled CLI (`auditql serve`) in a child process, as it runs in production. */
export async function startServerProcess(env: Record<string, string>, nodeArgs: string[] = []): Promise<ServerProcess> {
  const child = spawn(process.execPath, [...nodeArgs, 'dist/cjs/cli.js', 'serve'], {
    env: { ...process.env, NODE_ENV: '', PORT: '0', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const waiters: Array<{ pattern: RegExp; resolve: (match: string) => void }> = [];
  const onOutput = (chunk: Buffer) => {
    output += chunk;
    for (const waiter of [...waiters]) {
      const match = waiter.pattern.exec(output);
      if (match) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(match[1] ?? match[0]);
      }
    }
  };
  child.stdout!.on('data', onOutput);
  child.stderr!.on('data', onOutput);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const waitFor = (pattern: RegExp) => {
    const match = pattern.exec(output);
    if (match) return Promise.resolve(match[1] ?? match[0]);
    const found = deferred<string>();
    waiters.push({ pattern, resolve: found.resolve });
    return Promise.race([found.promise, exited.then((code) => Promise.reject(new Error(`server exited with ${code} before ${pattern}: ${output}`)))]);
  };
  const url = await waitFor(/listening on (http:\/\/[^\s"]+)/);
  const adminKey = /^\s+(aql_\S+)$/m.exec(output)?.[1] ?? '';
  return {
    child,
    url,
    adminKey,
    exited,
    output: () => output,
    waitFor,
    rss: () => {
      let status = '';
      try {
        status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      } catch {
        return 0;
      }
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Runs the compiled CLI (`auditql …`) to its end; resolves with its exit code and output. */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['dist/cjs/cli.js', ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk) => (stdout += chunk));
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
