import type { Server } from 'node:http';
import type { ExecutionArgs, GraphQLError } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import type { AuditYoga } from './yoga.js';

/** Largest WebSocket frame accepted; `ws` would otherwise take 100 MiB. */
export const MAX_WS_PAYLOAD = 1024 * 1024;

interface EnvelopedRoot {
  execute: (args: ExecutionArgs) => unknown;
  subscribe: (args: ExecutionArgs) => unknown;
}

/**
 * graphql-ws on `/graphql`, as a thin adapter: every operation goes through `yoga.getEnveloped`, so
 * sockets share HTTP's context factory, plugins and error masking instead of bypassing them.
 */
export function attachWebSocketServer(httpServer: Server, yoga: AuditYoga) {
  const wsServer = new WebSocketServer({ server: httpServer, path: yoga.graphqlEndpoint, maxPayload: MAX_WS_PAYLOAD });
  const disposable = useServer(
    {
      execute: (args) => (args.rootValue as EnvelopedRoot).execute(args) as never,
      subscribe: (args) => (args.rootValue as EnvelopedRoot).subscribe(args) as never,
      onSubscribe: async (ctx, _id, payload) => {
        const request = ctx.extra.request;
        const headers = new Headers();
        for (const [name, value] of Object.entries(request.headers)) {
          if (typeof value === 'string') headers.set(name, value);
        }
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          req: request,
          socketAddress: request.socket.remoteAddress,
          // Operations on an open socket count as POSTs: yoga refuses mutations from GET requests.
          request: new Request(new URL(request.url ?? '/graphql', 'http://localhost'), { method: 'POST', headers }),
          params: payload,
          connectionParams: ctx.connectionParams,
        });
        // A bad operation fails alone: returning errors (rather than throwing) keeps the socket and its
        // other subscriptions open.
        let document;
        try {
          document = parse(payload.query);
        } catch (error) {
          return [error as GraphQLError];
        }
        const errors = validate(schema, document);
        if (errors.length > 0) return errors;
        return {
          schema,
          operationName: payload.operationName,
          document,
          variableValues: payload.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe } satisfies EnvelopedRoot,
        };
      },
    },
    wsServer,
  );
  return {
    wsServer,
    async close() {
      await disposable.dispose();
      await new Promise<void>((resolve) => wsServer.close(() => resolve()));
    },
  };
}
