import { parentPort, workerData } from 'node:worker_threads';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

/**
 * Live subscribers, in their own thread so that the server thread does only server work. Reports, per
 * subscriber, the latencies seen (publish → receive, from a `sentAt` the publisher stamps) and whether
 * the entries arrived complete and in order.
 */
interface Input {
  url: string;
  count: number;
  slow: number;
  query: string;
  /** What the slow subscribers ask for (bigger entries back a paused socket up sooner). */
  slowQuery?: string;
  connectionParams: Record<string, unknown>;
}
const { url, count, slow, query, slowQuery, connectionParams } = workerData as Input;
const now = () => performance.timeOrigin + performance.now();

const latencies: number[] = [];
const sequences: number[][] = Array.from({ length: count }, () => []);
const closeReasons: string[] = [];
const sockets: WebSocket[] = [];
let ready = 0;
let fastClosed = 0;
/** When the last entry reached a fast subscriber (epoch ms). */
let lastReceivedAt = 0;

for (let i = 0; i < count; i++) {
  if (i < slow) {
    // A raw client that stops reading once subscribed.
    const socket = new WebSocket(url, 'graphql-transport-ws');
    sockets.push(socket);
    socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload: connectionParams })));
    socket.on('message', (raw) => {
      const message = JSON.parse(String(raw));
      if (message.type === 'connection_ack') {
        socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: slowQuery ?? query } }));
        ready += 1;
        setTimeout(() => socket.pause(), 0);
      } else if (message.type === 'next' && message.payload.errors) {
        closeReasons.push(message.payload.errors[0].extensions?.code ?? message.payload.errors[0].message);
      }
    });
    continue;
  }
  const client = createClient({ url, webSocketImpl: WebSocket, retryAttempts: 0, connectionParams, on: { connected: () => (ready += 1) } });
  client.subscribe(
    { query },
    {
      next: (message) => {
        if (message.errors) {
          closeReasons.push(`fast:${(message.errors[0]?.extensions as { code?: string } | undefined)?.code ?? message.errors[0]?.message}`);
          fastClosed += 1;
          return;
        }
        const data = message.data as { sample?: { seq: number; sentAt: number } } | undefined;
        const value = data && Object.values(data)[0] as { meta?: { seq: number; sentAt: number }; seq?: number; sentAt?: number };
        const meta = value?.meta ?? (value as { seq: number; sentAt: number });
        if (!meta) return;
        lastReceivedAt = now();
        latencies.push(lastReceivedAt - meta.sentAt);
        sequences[i]!.push(meta.seq);
      },
      error: () => undefined,
      complete: () => undefined,
    },
  );
}

parentPort!.on('message', (command: string) => {
  if (command === 'ready?') parentPort!.postMessage({ ready });
  if (command === 'resume') for (const socket of sockets) socket.resume();
  if (command === 'progress') {
    const fast = sequences.slice(slow).map((seq) => seq.length);
    parentPort!.postMessage({ minReceived: fast.length ? Math.min(...fast) : 0, fastClosed, slowClosed: closeReasons.filter((r) => !r.startsWith('fast:')).length });
  }
  if (command === 'report') {
    parentPort!.postMessage({ latencies, sequences: sequences.slice(slow), closeReasons, lastReceivedAt });
  }
});
