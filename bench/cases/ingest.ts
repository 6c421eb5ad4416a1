import { fork, type ChildProcess } from 'node:child_process';
import autocannon from 'autocannon';
import { SignJWT } from 'jose';
import { interleave, scaled, type CaseResult } from '../stats.js';

/** What a client asks back: the full entry, so that the work includes building and sending it. */
const ENTRY = 'id resource action resourceId name data previousData meta author { id name type } createdAt transactionId';
const INPUT = { resource: 'orders', action: 'update', resourceId: '42', data: { status: 'paid', total: '99.50' }, previousData: { status: 'open', total: '99.50' }, meta: { requestId: 'r-1' } };
const ONE = JSON.stringify({ query: `mutation($input: LogEventInput!) { logEvent(input: $input) { ${ENTRY} } }`, variables: { input: INPUT } });
const batchBody = (size: number) =>
  JSON.stringify({
    query: `mutation($inputs: [LogEventInput!]!) { logEvents(inputs: $inputs) { ${ENTRY} } }`,
    variables: { inputs: Array.from({ length: size }, (_, i) => ({ ...INPUT, resourceId: String(i) })) },
  });
const JWT_SECRET = 'bench-secret-that-is-long-enough-for-hs256!';

interface Server {
  url: string;
  key: string;
  count(): Promise<number>;
  stop(): Promise<void>;
}

/** A server in a child process (bench/servers/ingest-server.ts): it has a core to itself, apart from the load. */
async function spawnServer(kind: 'bare' | 'ours', synchronous = 'FULL', jwtSecret = ''): Promise<Server> {
  const child: ChildProcess = fork(new URL('../servers/ingest-server.ts', import.meta.url).pathname, [kind, synchronous, jwtSecret], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ask = <T,>(command: string) => new Promise<T>((resolve) => (child.once('message', (m) => resolve(m as T)), child.send(command)));
  const { url, key } = await new Promise<{ url: string; key: string }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { url: string; key: string }));
    child.once('exit', (code) => reject(new Error(`${kind} server exited with ${code}`)));
  });
  return {
    url,
    key,
    count: async () => (await ask<{ count: number }>('count')).count,
    stop: () => new Promise<void>((resolve) => (child.once('exit', () => resolve()), child.send('stop'))),
  };
}

interface Load {
  /** Successful responses per second: HTTP 200 with data and no `errors`. */
  rate: number;
  failed: number;
  p99: number;
  /** The first failure seen. */
  sample: string;
}

/** A round: this long, or this many requests (for large requests, so that a round is whole requests). */
type Work = { seconds: number } | { requests: number };

/**
 * A round of load at `connections`, counting only successful responses: a GraphQL error is an HTTP 200
 * too, and must not count as throughput.
 */
export async function load(url: string, headers: Record<string, string>, body: string, work: Work, connections: number, tokens?: Tokens): Promise<Load> {
  let ok = 0;
  let failed = 0;
  let sample = '';
  const started = performance.now();
  let answered = started;
  const result = await autocannon({
    url,
    connections,
    ...('seconds' in work ? { duration: work.seconds } : { amount: work.requests }),
    requests: [
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
        body,
        // A token of its own per request, when given: each is then verified, none answered from a cache.
        ...(tokens ? { setupRequest: (request: autocannon.Request): autocannon.Request => ({ ...request, headers: { ...request.headers, authorization: `Bearer ${tokens.next()}` } }) } : {}),
        onResponse: (status: number, response: string) => {
          answered = performance.now();
          if (status === 200 && response.startsWith('{"data":{') && !response.includes('"errors":[')) ok += 1;
          else {
            failed += 1;
            if (sample === '') sample = `${status} ${response.slice(0, 160)}`;
          }
        },
      },
    ],
  });
  // Up to the last answer: autocannon notices that a fixed number of requests is done only on its
  // one-second tick, so its end (and the wall time around it) comes in whole seconds, which made every
  // rate a round count of seconds and every ratio a ratio of them (3 s against 5, 6 or 7).
  const elapsed = (answered - started) / 1000;
  if (result.errors > 0 && sample === '') sample = `${result.errors} connection errors (${result.timeouts} timeouts)`;
  return { rate: ok / elapsed, failed: failed + result.errors, p99: result.latency.p99, sample };
}

/** A round is a fixed number of requests (not a fixed time, which drops the requests still in flight at its end). */
const roundRequests = () => Math.max(200, scaled(10_000));

/** Distinct tokens handed out one per request, never twice. */
interface Tokens {
  next(): string;
}

async function compare(options: { ours: Server; bare: Server; auth: Record<string, string>; tokens?: Tokens; body: string; connections: number; perRequest: number; work: Work }) {
  let failed = 0;
  const p99 = { ours: 0, bare: 0 };
  const side = (server: Server, which: 'ours' | 'bare', headers: Record<string, string>) => async () => {
    // Both sides get the same requests, tokens included (bare yoga ignores them): the load generator, which
    // shares the machine, then does the same work for each.
    const result = await load(server.url, headers, options.body, options.work, options.connections, options.tokens);
    if (which === 'ours') failed += result.failed;
    if (result.sample) console.error(`${which}: failed responses, e.g. ${result.sample}`);
    p99[which] = Math.max(p99[which], result.p99);
    return result.rate * options.perRequest;
  };
  const before = await options.ours.count();
  const measured = await interleave({ ours: side(options.ours, 'ours', options.auth), baseline: side(options.bare, 'bare', options.auth) });
  const stored = (await options.ours.count()) - before;
  const round = 'seconds' in options.work ? `${options.work.seconds} s` : `${options.work.requests} requests`;
  return { measured, failed, stored, round, p99 };
}

/** logEvent over HTTP at 50 connections with an API key, full entry returned, against bare yoga returning the same fields. */
export async function ingest(): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  const bare = await spawnServer('bare');
  for (const synchronous of ['FULL', 'NORMAL']) {
    const ours = await spawnServer('ours', synchronous);
    const run = await compare({ ours, bare, auth: { authorization: `Bearer ${ours.key}` }, body: ONE, connections: 50, perRequest: 1, work: { requests: roundRequests() } });
    await ours.stop();
    results.push(ingestResult(`ingest, API key (synchronous=${synchronous})`, run));
  }
  await bare.stop();
  return results;
}

/**
 * The same with a JWT (HS256), as a user-facing app sends it: a token of its own for every request, so
 * that each one is verified (the server remembers verified tokens until they expire; one token for every
 * request would measure that memory, not JWT verification).
 */
export async function ingestJwt(): Promise<CaseResult[]> {
  const bare = await spawnServer('bare');
  const ours = await spawnServer('ours', 'FULL', JWT_SECRET);
  const now = Math.floor(Date.now() / 1000);
  const secret = new TextEncoder().encode(JWT_SECRET);
  // Enough for the warm-up and every measured round of both sides (interleave runs at most 8 a side).
  const signed = await Promise.all(
    Array.from({ length: roundRequests() * 16 }, (_, i) =>
      new SignJWT({ sub: `user-${i}`, name: `User ${i}`, tenant: 'default', scope: 'audit:write audit:read', iat: now, exp: now + 3600 }).setProtectedHeader({ alg: 'HS256' }).sign(secret),
    ),
  );
  let at = 0;
  const tokens: Tokens = {
    next: () => {
      if (at >= signed.length) throw new Error('the JWT case ran out of distinct tokens');
      return signed[at++]!;
    },
  };
  const run = await compare({ ours, bare, auth: {}, tokens, body: ONE, connections: 50, perRequest: 1, work: { requests: roundRequests() } });
  await ours.stop();
  await bare.stop();
  return [ingestResult(`ingest, JWT, a distinct token per request (synchronous=FULL), ${at.toLocaleString('en')} tokens`, run)];
}

function ingestResult(name: string, run: Awaited<ReturnType<typeof compare>>): CaseResult {
  const { measured } = run;
  return {
    case: name,
    metric: 'logEvent/s',
    value: measured.median.ours,
    baseline: measured.median.baseline,
    ratio: measured.median.ratio,
    spread: measured.spread,
    target: '≥ 0.6× bare yoga, 0 failed',
    met: measured.median.ratio >= 0.6 && run.failed === 0,
    detail: `50 connections, ${measured.ours.length} rounds of ${run.round} each side, interleaved; full entry returned (bare yoga: same fields, nothing stored); p99 ≤ ${run.p99.ours} ms (bare ${run.p99.bare} ms); ${run.stored} entries stored; ${run.failed} failed responses`,
  };
}

/** logEvents with lists of 500 over HTTP, entries/s, against bare yoga answering the same lists with the same fields. */
export async function logEventsBatch(): Promise<CaseResult[]> {
  const size = 500;
  const bare = await spawnServer('bare');
  const ours = await spawnServer('ours');
  const run = await compare({ ours, bare, auth: { authorization: `Bearer ${ours.key}` }, body: batchBody(size), connections: 4, perRequest: size, work: { requests: Math.max(8, scaled(40)) } });
  await ours.stop();
  await bare.stop();
  const { measured } = run;
  return [
    {
      case: `logEvents, lists of ${size} (synchronous=FULL)`,
      metric: 'entries/s',
      value: measured.median.ours,
      baseline: measured.median.baseline,
      ratio: measured.median.ratio,
      spread: measured.spread,
      target: '≥ 20,000 entries/s, 0 failed',
      met: measured.median.ours >= 20_000 && run.failed === 0,
      detail: `4 connections, ${measured.ours.length} rounds of ${run.round} each side, interleaved; full entries returned; p99 ≤ ${run.p99.ours} ms per list (bare ${run.p99.bare} ms); ${run.stored} entries stored; ${run.failed} failed responses`,
    },
  ];
}
