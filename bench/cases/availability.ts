import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { startServerProcess } from '../../test/helpers/server-process.js';
import { seedBulk } from '../../test/helpers/seed.js';
import { benchDatabase } from '../dataset.js';
import { median, percentile, range, type CaseResult } from '../stats.js';

const SECRET = 'bench-secret-that-is-long-enough-for-hs256!';
const GRACE_MS = 10_000;
const ROUNDS = 5;
const SAMPLES = 20;

// The heaviest reads a read-only key may send: an hourly chart over three months grouped by author, and a
// substring search with its total count.
const HEAVY = [
  '{ activityChart(interval: HOUR, groupBy: AUTHOR, filter: { from: "2026-08-01T00:00:00Z", to: "2026-11-01T00:00:00Z" }) { count } }',
  '{ auditLogs(first: 50, filter: { search: "itle 9" }) { totalCount edges { node { id } } } }',
];
const PAGE = '{ auditLogs(first: 50) { edges { node { id action resource createdAt } } } }';

const token = (sub: string, tenant: string) =>
  new SignJWT({ sub, tenant, scope: 'audit:read' })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(SECRET));

async function timed(fn: () => Promise<void>): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

/**
 * One read-only key sends twenty of its heaviest reads at once to the real server (the CLI in a child
 * process) on the 1M-entry database, while another tenant reads its first page and a load balancer probes
 * `/live`. Idle and attacked rounds alternate; both sides are warm. Then SIGTERM during such an attack: the
 * server must be gone within its grace period.
 */
export async function availability(): Promise<CaseResult[]> {
  const { file, rows } = await benchDatabase(Date.UTC(2026, 10, 1));
  const dir = mkdtempSync(join(tmpdir(), 'auditql-availability-'));
  const copy = join(dir, 'audit.sqlite');
  copyFileSync(file, copy);
  seedBulk(copy, 5_000, () => ({ tenant_id: 'other' }));
  const server = await startServerProcess({
    DATABASE_URL: `sqlite:${copy}`,
    JWT_SECRET: SECRET,
    META_AUDIT: 'off',
    SHUTDOWN_TIMEOUT_MS: String(GRACE_MS),
  });
  const live = server.url.replace(/\/graphql$/, '/live');
  const attacker = { authorization: `Bearer ${await token('attacker', 'default')}`, 'content-type': 'application/json' };
  const neighbour = { authorization: `Bearer ${await token('neighbour', 'other')}`, 'content-type': 'application/json' };
  const gql = async (query: string, headers: Record<string, string>) => {
    const response = await fetch(server.url, { method: 'POST', headers, body: JSON.stringify({ query }) });
    return (await response.json()) as { errors?: Array<{ extensions?: { code?: string } }> };
  };
  const sample = async (liveTimes: number[], pageTimes: number[]) => {
    for (let i = 0; i < SAMPLES; i++) {
      liveTimes.push(await timed(async () => void (await (await fetch(live)).arrayBuffer())));
      pageTimes.push(
        await timed(async () => {
          const page = await gql(PAGE, neighbour);
          if (page.errors) throw new Error(`the neighbour's page failed: ${JSON.stringify(page.errors)}`);
        }),
      );
    }
  };
  const attack = () => Array.from({ length: 20 }, (_, i) => gql(HEAVY[i % HEAVY.length]!, attacker));

  // Warm both sides.
  await sample([], []);
  await Promise.all(attack());
  const idle = { live: [] as number[], page: [] as number[] };
  const attacked = { live: [] as number[], page: [] as number[] };
  const roundRatios: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const before = idle.page.length;
    await sample(idle.live, idle.page);
    const heavy = attack();
    const from = attacked.page.length;
    await sample(attacked.live, attacked.page);
    await Promise.all(heavy);
    roundRatios.push(percentile(attacked.page.slice(from), 99) / percentile(idle.page.slice(before), 99));
  }

  // SIGTERM while twenty heavy reads run.
  const pending = attack().map((p) => p.catch(() => null));
  await new Promise<void>((resolve) => setImmediate(resolve));
  const stopMs = await timed(async () => void (await server.stop('SIGTERM')));
  await Promise.all(pending);
  rmSync(dir, { recursive: true, force: true });

  const liveP99 = percentile(attacked.live, 99);
  const pageRatio = percentile(attacked.page, 99) / percentile(idle.page, 99);
  const size = `${rows.toLocaleString('en')} entries`;
  return [
    {
      case: `availability: /live under 20 heavy reads (${size})`,
      metric: 'ms p99',
      value: liveP99,
      baseline: percentile(idle.live, 99),
      ratio: liveP99 / percentile(idle.live, 99),
      target: '≤ 100 ms p99',
      met: liveP99 <= 100,
      detail: `${ROUNDS} idle/attacked rounds × ${SAMPLES} probes; median ${median(attacked.live).toFixed(1)} ms (idle ${median(idle.live).toFixed(1)} ms)`,
    },
    {
      case: `availability: other tenant's first page under attack (${size})`,
      metric: 'ms p99',
      value: percentile(attacked.page, 99),
      baseline: percentile(idle.page, 99),
      ratio: pageRatio,
      target: '≤ 10× idle p99',
      met: pageRatio <= 10,
      detail: `per-round p99 ratios ${range(roundRatios)}`,
    },
    {
      case: `availability: SIGTERM during 20 heavy reads (${size})`,
      metric: 'ms to exit',
      value: stopMs,
      baseline: null,
      ratio: null,
      target: `≤ ${GRACE_MS} ms grace`,
      met: stopMs <= GRACE_MS,
      detail: 'the CLI server in a child process',
    },
  ];
}
