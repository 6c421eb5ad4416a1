import type { DataSource } from 'typeorm';
import type { Plugin } from 'graphql-yoga';

/** `GET /health`: 200 when the database answers a query, 503 otherwise. (`/live` only says the process is up.) */
export function useDatabaseHealth(dataSource: DataSource, path = '/health'): Plugin {
  return {
    async onRequest({ url, endResponse, fetchAPI }) {
      if (url.pathname !== path) return;
      let ok = false;
      try {
        ok = dataSource.isInitialized && (await dataSource.query('SELECT 1 AS ok')).length === 1;
      } catch {
        ok = false;
      }
      endResponse(
        new fetchAPI.Response(JSON.stringify({ status: ok ? 'ok' : 'unavailable', database: ok ? 'up' : 'down' }), {
          status: ok ? 200 : 503,
          headers: { 'content-type': 'application/json' },
        }),
      );
    },
  };
}
