import { createSchema, createYoga, type Plugin } from 'graphql-yoga';
import { describe, expect, it } from 'vitest';
import { useAuditContext } from '../src/server.js';
import { currentAuditContext } from '../src/typeorm.js';

/** A yoga server whose query and subscription report the acting author they run under, if any. */
function server(options?: Parameters<typeof useAuditContext>[1]) {
  return createYoga<{ actor: string }>({
    schema: createSchema({
      typeDefs: 'type Query { actor: String } type Subscription { actor: String }',
      resolvers: {
        Query: { actor: () => currentAuditContext()?.author?.id ?? null },
        Subscription: {
          actor: {
            // What the subscribe resolver itself sees (where it might write), not its generator's later steps.
            subscribe: () => {
              const actor = currentAuditContext()?.author?.id ?? null;
              return (async function* () {
                yield { actor };
              })();
            },
          },
        },
      },
    }),
    context: () => ({ actor: 'user-7' }),
    plugins: [useAuditContext<{ actor: string }>((context) => ({ author: { id: context.actor } }), options) as unknown as Plugin],
    logging: false,
  });
}

async function query(yoga: ReturnType<typeof server>): Promise<unknown> {
  const response = await yoga.fetch('http://yoga/graphql', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ actor }' }) });
  return ((await response.json()) as { data: { actor: unknown } }).data.actor;
}

/** The first event of the subscription over SSE. */
async function subscribed(yoga: ReturnType<typeof server>): Promise<unknown> {
  const response = await yoga.fetch('http://yoga/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ query: 'subscription { actor }' }),
  });
  const text = await response.text();
  const data = text.split('\n').find((line) => line.startsWith('data: {'));
  return (JSON.parse(data!.slice('data: '.length)) as { data: { actor: unknown } }).data.actor;
}

describe('useAuditContext', () => {
  it('runs queries and subscriptions inside the audit context by default', async () => {
    const yoga = server();
    expect(await query(yoga)).toBe('user-7');
    expect(await subscribed(yoga)).toBe('user-7');
  });

  it('leaves subscriptions outside it with `subscriptions: false`, and queries inside', async () => {
    const yoga = server({ subscriptions: false });
    expect(await query(yoga)).toBe('user-7');
    expect(await subscribed(yoga)).toBeNull();
  });
});
