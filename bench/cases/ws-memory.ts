import { fork } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { interleave, median, scaled, type CaseResult } from '../stats.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Measured {
  rss: number;
  heap: number;
}

/**
 * One round: a fresh server process (bench/servers/ws-server.ts), its memory after GC, `count` graphql-ws
 * subscribers connected from a worker thread of this process, its memory after GC again. Returns the
 * resident memory added per subscriber, in KB.
 */
async function perSubscriber(kind: 'bare' | 'ours', count: number, heaps: number[]): Promise<number> {
  const child = fork(new URL('../servers/ws-server.ts', import.meta.url).pathname, [kind], { execArgv: ['--import', 'tsx', '--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ask = <T,>(command: string) => new Promise<T>((resolve) => (child.once('message', (m) => resolve(m as T)), child.send(command)));
  const { url, key } = await new Promise<{ url: string; key: string }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { url: string; key: string }));
    child.once('exit', (code) => reject(new Error(`${kind} server exited with ${code}`)));
  });
  const before = await ask<Measured>('rss');
  const query = kind === 'bare' ? 'subscription { sample { seq sentAt } }' : 'subscription { auditLogAdded(filter: { resource: ["orders"] }) { id meta } }';
  const worker = new Worker(new URL('./subscribers.worker.mjs', import.meta.url), {
    workerData: { url, count, slow: 0, query, connectionParams: key ? { authorization: `Bearer ${key}` } : {} },
  });
  const askWorker = <T,>(command: string) => new Promise<T>((resolve) => (worker.once('message', resolve), worker.postMessage(command)));
  for (let i = 0; i < 600 && (await askWorker<{ ready: number }>('ready?')).ready < count; i++) await sleep(100);
  await sleep(500); // the last subscribe messages (sent after each ack) reach the server
  const after = await ask<Measured>('rss');
  await worker.terminate();
  await new Promise<void>((resolve) => (child.once('exit', () => resolve()), child.send('stop')));
  heaps.push((after.heap - before.heap) / count / 1024);
  return (after.rss - before.rss) / count / 1024;
}

/** Memory per 1,000 WebSocket subscribers: ours against bare yoga + graphql-ws, each server in a process of its own. */
export async function wsMemory(): Promise<CaseResult[]> {
  const count = scaled(1000);
  const heaps = { ours: [] as number[], bare: [] as number[] };
  const measured = await interleave({ ours: () => perSubscriber('ours', count, heaps.ours), baseline: () => perSubscriber('bare', count, heaps.bare) });
  const perThousand = (kb: number) => (kb * 1000) / 1024;
  return [
    {
      case: `memory per WebSocket subscriber (${count} subscribers)`,
      metric: 'MB RSS per 1,000 subscribers',
      value: perThousand(measured.median.ours),
      baseline: perThousand(measured.median.baseline),
      ratio: measured.median.ratio,
      spread: measured.spread,
      target: '≤ 1.5× bare yoga + graphql-ws',
      met: measured.median.ratio <= 1.5,
      detail: `RSS after GC with ${count} subscribers minus before, in a fresh server process per round; ${measured.ours.length} rounds each, interleaved; JS heap per 1,000: ${perThousand(median(heaps.ours.slice(1))).toFixed(1)} MB (bare ${perThousand(median(heaps.bare.slice(1))).toFixed(1)} MB)`,
    },
  ];
}
