import type { Server } from 'node:http';
import { GraphQLError, type ExecutionArgs } from 'graphql';
import { CloseCode } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocket, WebSocketServer } from 'ws';
import type { Credentials, Authenticator } from '../auth/authenticate.js';
import type { Principal } from '../auth/principal.js';
import { atTime } from '../auth/expiry.js';
import type { Limits } from '../config.js';
import { ErrorCode } from '../shared/errors.js';
import { unauthenticated } from '../auth/authenticate.js';
import type { GraphQLContext } from '../schema/context.js';
import type { Logger } from '../shared/logger.js';
import type { RequestInfo } from './context.js';
import type { AuditYoga } from './yoga.js';

/** Largest WebSocket frame accepted; `ws` would otherwise take 100 MiB. */
export const MAX_WS_PAYLOAD = 1024 * 1024;

/**
 * A server-side socket whose errors go to the server's log. graphql-ws prints every socket error with
 * console.error as an "internal error" and closes the socket with its message as the reason; most are a
 * client's fault (a frame over MAX_WS_PAYLOAD, invalid UTF-8, a bad opcode: ws's `WS_ERR_*` codes), after
 * which ws has already closed the socket with the matching status (1009, 1007, 1002). Those are a warning
 * without a stack; anything else is an error, and the socket is closed with 1011 and no detail.
 */
function socketClass(logger: Pick<Logger, 'warn' | 'error'>): typeof WebSocket {
  return class LoggedSocket extends WebSocket {
    override emit(event: string | symbol, ...args: unknown[]): boolean {
      if (event !== 'error') return super.emit(event, ...args);
      const error = args[0] as NodeJS.ErrnoException | undefined;
      if (typeof error?.code === 'string' && error.code.startsWith('WS_ERR_')) {
        logger.warn({ code: error.code }, `closed a WebSocket that broke the protocol: ${error.message}`);
      } else {
        logger.error({ err: error }, 'WebSocket error');
        if (this.readyState === WebSocket.OPEN) this.close(1011, 'Internal server error');
      }
      return true;
    }
  };
}

interface EnvelopedRoot {
  execute: (args: ExecutionArgs) => unknown;
  subscribe: (args: ExecutionArgs) => unknown;
}

interface ConnectionState {
  principal?: Principal;
  cancelExpiry?: () => void;
}

/** Credentials stop counting once they expire or their key is revoked; the socket then refuses every operation. */
function stillValid(principal: Principal | undefined): boolean {
  if (!principal || principal.revoked?.aborted) return false;
  return principal.expiresAt === null || principal.expiresAt > Date.now();
}

/** `connection_init` payload: `{ authorization: "Bearer …" }` or `{ apiKey: "…" }` (header spellings work too). */
function credentialsOf(params: Record<string, unknown> | undefined): Credentials {
  const pick = (...names: string[]) => {
    for (const name of names) if (typeof params?.[name] === 'string') return params[name] as string;
    return null;
  };
  return { authorization: pick('authorization', 'Authorization'), apiKey: pick('apiKey', 'x-api-key', 'X-Api-Key') };
}

/**
 * graphql-ws on `/graphql`, as a thin adapter: every operation goes through `yoga.getEnveloped`, so
 * sockets share HTTP's context factory, plugins and error masking instead of bypassing them.
 * Credentials are checked once, at `connection_init`; a socket without valid ones is closed with 4403, and
 * one whose token expires or whose API key is revoked is closed with 4401 at that moment.
 */
export function attachWebSocketServer(
  httpServer: Server,
  yoga: AuditYoga,
  auth: Authenticator,
  limits: Pick<Limits, 'subscriptionsPerConnection'>,
  buildContext: (info: RequestInfo) => Promise<GraphQLContext>,
  logger: Pick<Logger, 'warn' | 'error'>,
) {
  const wsServer = new WebSocketServer({ server: httpServer, path: yoga.graphqlEndpoint, maxPayload: MAX_WS_PAYLOAD, WebSocket: socketClass(logger) });
  const states = new WeakMap<object, ConnectionState>();
  const disposable = useServer(
    {
      execute: (args) => (args.rootValue as EnvelopedRoot).execute(args) as never,
      subscribe: (args) => (args.rootValue as EnvelopedRoot).subscribe(args) as never,
      onConnect: async (ctx) => {
        let principal: Principal | null;
        try {
          principal = await auth.authenticate(credentialsOf(ctx.connectionParams));
        } catch {
          return false;
        }
        if (!principal || !stillValid(principal)) return false;
        const state: ConnectionState = { principal };
        const socket = ctx.extra.socket;
        const cancelTimer = principal.expiresAt !== null ? atTime(principal.expiresAt, () => socket.close(CloseCode.Unauthorized, 'Credentials expired')) : () => undefined;
        const onRevoked = () => socket.close(CloseCode.Unauthorized, 'Credentials revoked');
        principal.revoked?.addEventListener('abort', onRevoked, { once: true });
        state.cancelExpiry = () => {
          cancelTimer();
          principal.revoked?.removeEventListener('abort', onRevoked);
        };
        states.set(ctx.extra.socket, state);
        return true;
      },
      onDisconnect: (ctx) => states.get(ctx.extra.socket)?.cancelExpiry?.(),
      onClose: (ctx) => states.get(ctx.extra.socket)?.cancelExpiry?.(),
      onSubscribe: async (ctx, id, payload) => {
        if (!stillValid(states.get(ctx.extra.socket)?.principal)) {
          return [unauthenticated('The credentials of this connection have expired or were revoked; connect again with valid ones')];
        }
        if (Object.keys(ctx.subscriptions).filter((other) => other !== id).length >= limits.subscriptionsPerConnection) {
          return [new GraphQLError(`At most ${limits.subscriptionsPerConnection} operations per connection`, { extensions: { code: ErrorCode.SubscriptionLimit } })];
        }
        const request = ctx.extra.request;
        const headers = new Headers();
        for (const [name, value] of Object.entries(request.headers)) {
          if (typeof value === 'string') headers.set(name, value);
        }
        // Operations on an open socket count as POSTs: yoga refuses mutations from GET requests.
        const fetchRequest = new Request(new URL(request.url ?? '/graphql', 'http://localhost'), { method: 'POST', headers });
        const socketAddress = request.socket.remoteAddress;
        // The context is built here, whole, and handed to yoga as its initial context: merged in by yoga's
        // context factory instead, its ~25 properties arrived one by one and V8 kept the object as a hash
        // table (~1.5 KB more per open subscription, measured in heap snapshots).
        const built = await buildContext({ request: fetchRequest, socketAddress, principal: states.get(ctx.extra.socket)?.principal ?? null });
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({ ...built, req: request, socketAddress, request: fetchRequest, params: payload });
        // A bad operation fails alone: returning errors (rather than throwing, which closes the socket
        // with 4500) keeps the socket and its other subscriptions open. Query limits throw while parsing.
        try {
          const document = parse(payload.query);
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
        } catch (error) {
          if (error instanceof GraphQLError) return [error];
          throw error;
        }
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
