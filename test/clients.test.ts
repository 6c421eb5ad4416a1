import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client/core';
import { Client as UrqlClient, fetchExchange } from '@urql/core';
import { GraphQLClient } from 'graphql-request';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './helpers/test-app.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(() => app.close());

const QUERY = 'query Recent { auditLogs(first: 5) { totalCount edges { node { id resource } } } }';
const MUTATION = 'mutation Log($resource: String!) { logEvent(input: { resource: $resource, action: "create" }) { id resource } }';

/** The real fetch, recording each request's method, so a test can show which one a client used. */
function recordingFetch() {
  const methods: string[] = [];
  const fetchFn: typeof fetch = (input, init) => {
    methods.push((init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase());
    return fetch(input, init);
  };
  return { methods, fetch: fetchFn };
}

/**
 * Popular clients with their defaults. Credentials travel in `Authorization`, which a cross-site page cannot
 * set without a CORS preflight, so the server takes such requests without the CSRF header, GET included.
 */
describe('GraphQL clients with their default settings', () => {
  it('@urql/core: queries as GET, mutations as POST', async () => {
    const recorder = recordingFetch();
    const client = new UrqlClient({
      url: app.url,
      exchanges: [fetchExchange],
      fetch: recorder.fetch,
      fetchOptions: { headers: { authorization: `Bearer ${app.adminKey}` } },
    });
    const written = await client.mutation(MUTATION, { resource: 'urql' }).toPromise();
    expect(written.error).toBeUndefined();
    expect(written.data.logEvent.resource).toBe('urql');
    const read = await client.query(QUERY, {}).toPromise();
    expect(read.error).toBeUndefined();
    expect(read.data.auditLogs.totalCount).toBeGreaterThan(0);
    expect(recorder.methods).toEqual(['POST', 'GET']);
  });

  it('@urql/core with an x-api-key header', async () => {
    const client = new UrqlClient({ url: app.url, exchanges: [fetchExchange], fetchOptions: { headers: { 'x-api-key': app.adminKey } } });
    const read = await client.query(QUERY, {}).toPromise();
    expect(read.error).toBeUndefined();
    expect(read.data.auditLogs.totalCount).toEqual(expect.any(Number));
  });

  it('Apollo Client (core, no React)', async () => {
    const client = new ApolloClient({
      link: new HttpLink({ uri: app.url, headers: { authorization: `Bearer ${app.adminKey}` } }),
      cache: new InMemoryCache(),
    });
    const written = await client.mutate<{ logEvent: { resource: string } }>({ mutation: gql(MUTATION), variables: { resource: 'apollo' } });
    expect(written.data?.logEvent.resource).toBe('apollo');
    const read = await client.query<{ auditLogs: { totalCount: number } }>({ query: gql(QUERY) });
    expect(read.data?.auditLogs.totalCount).toBeGreaterThan(0);
    client.stop();
  });

  it('graphql-request', async () => {
    const client = new GraphQLClient(app.url, { headers: { authorization: `Bearer ${app.adminKey}` } });
    const written = await client.request<{ logEvent: { resource: string } }>(MUTATION, { resource: 'graphql-request' });
    expect(written.logEvent.resource).toBe('graphql-request');
    const read = await client.request<{ auditLogs: { totalCount: number } }>(QUERY);
    expect(read.auditLogs.totalCount).toBeGreaterThan(0);
  });

  it('still refuses a GET without credentials or the CSRF header, as a cross-site page could send it', async () => {
    const response = await fetch(`${app.url}?query=${encodeURIComponent(QUERY)}`);
    expect(response.status).toBe(403);
    expect(await response.text()).toMatch(/CSRF/);
  });
});
