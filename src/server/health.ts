import type { DataSource } from 'typeorm';
import type { Plugin } from 'graphql-yoga';
import type { StorageHealth } from '../db/storage-health.js';

function json(fetchAPI: { Response: typeof Response }, status: number, body: unknown): Response {
  return new fetchAPI.Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' } });
}

async function databaseAnswers(dataSource: DataSource): Promise<boolean> {
  try {
    return dataSource.isInitialized && (await dataSource.query('SELECT 1 AS ok')).length === 1;
  } catch {
    return false;
  }
}

/**
 * `GET /health`: 200 when the database answers a query, 503 otherwise (`/live` only says the process is up).
 * `GET /ready`: 200 only when the server can also store entries — after a storage failure (disk full, I/O
 * error, corruption, a lock held too long) it answers 503 with the reason until a write succeeds again,
 * so a load balancer sends writers elsewhere while reads of what is stored keep working.
 */
export function useHealthEndpoints(dataSource: DataSource, storage: StorageHealth, closing?: AbortSignal): Plugin {
  return {
    async onRequest({ url, endResponse, fetchAPI }) {
      if (url.pathname === '/health') {
        const up = await databaseAnswers(dataSource);
        endResponse(json(fetchAPI, up ? 200 : 503, { status: up ? 'ok' : 'unavailable', database: up ? 'up' : 'down' }));
      } else if (url.pathname === '/ready') {
        const up = await databaseAnswers(dataSource);
        const problem = storage.problem;
        const draining = closing?.aborted === true;
        const ready = up && !problem && !draining;
        endResponse(
          json(fetchAPI, ready ? 200 : 503, {
            status: ready ? 'ready' : draining ? 'shutting down' : 'not ready',
            database: up ? 'up' : 'down',
            writes: problem ? { ok: false, reason: problem.code, since: new Date(problem.since).toISOString() } : { ok: up },
          }),
        );
      }
    },
  };
}
