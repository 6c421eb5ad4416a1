import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Plugin } from 'graphql-yoga';
import type { WebSocket, WebSocketServer } from 'ws';
import type { Limits } from '../config.js';
import type { Logger } from '../shared/logger.js';
import { ErrorCode } from '../shared/errors.js';
import { SECURITY_HEADERS } from './security-headers.js';

/** WebSocket close codes this server uses besides graphql-ws's own (4400–4499). */
export const CloseCode = {
  /** The server is shutting down; reconnect (to another instance, or later) and resume with `after`. */
  GoingAway: 1001,
  /** The client did not read what was sent to it in time; reconnect and resume with `after`. */
  SlowConsumer: 4008,
} as const;

/** How long a socket closed as a slow consumer may take to acknowledge the close before it is cut. */
const CLOSE_GRACE_MS = 5_000;
/** How often live connections are checked against the send limits. */
const SWEEP_MS = 1_000;

interface SocketState {
  /** Start times of the sends not yet written to the operating system, oldest first. */
  pending: number[];
  closing: boolean;
}

interface StreamState {
  res: ServerResponse;
  /** An SSE response (yoga streams when the client accepts text/event-stream). */
  events: boolean;
  /** Since when the response has been waiting for its buffer to drain. */
  stalledSince?: number;
}

/**
 * The server's live connections: HTTP requests in flight, SSE responses and WebSockets. It
 * - closes a WebSocket whose unsent bytes pass `maxBufferedBytes` or whose oldest unsent message waited
 *   longer than `sendTimeoutMs` (close code 4008 with a reason), and ends an SSE response in the same state:
 *   a client that does not read cannot make the server hold more for it;
 * - knows when in-flight work is done, for a shutdown that drains: requests that arrived before the shutdown
 *   are answered, later ones get 503 SHUTTING_DOWN, graphql-ws operations running on open sockets finish.
 */
export class Connections {
  private readonly sockets = new WeakMap<WebSocket, SocketState>();
  private readonly streams = new Set<StreamState>();
  private wsServer: WebSocketServer | undefined;
  private requests = 0;
  private operations = 0;
  private draining = false;
  private idleWaiters: Array<() => void> = [];
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly limits: Pick<Limits, 'maxBufferedBytes' | 'sendTimeoutMs'>,
    private readonly logger: Logger,
  ) {}

  /** The request handler, counting requests in flight and refusing new ones once the shutdown began. */
  handle(handler: RequestListener): RequestListener {
    return (req: IncomingMessage, res: ServerResponse) => {
      if (this.draining) return refuseWhileClosing(res);
      this.requests++;
      const stream: StreamState = { res, events: /text\/event-stream/.test(req.headers.accept ?? '') };
      this.streams.add(stream);
      res.once('close', () => {
        this.streams.delete(stream);
        this.requests--;
        this.checkIdle();
      });
      handler(req, res);
    };
  }

  /** Watches every socket of `wsServer`, and refuses new ones once the shutdown began. */
  watch(wsServer: WebSocketServer): void {
    this.wsServer = wsServer;
    const shouldHandle = wsServer.shouldHandle.bind(wsServer);
    wsServer.shouldHandle = (req) => !this.draining && shouldHandle(req);
    wsServer.on('connection', (socket) => this.watchSocket(socket));
    this.sweeper ??= setInterval(() => this.sweep(), SWEEP_MS).unref();
  }

  /** A yoga plugin counting operations being executed on any transport (graphql-ws ones are not HTTP requests). */
  plugin(): Plugin {
    return {
      onExecute: ({ executeFn, setExecuteFn }) => {
        // Wrapping the execution itself (not onExecuteDone) also counts down when it throws.
        setExecuteFn(async (args) => {
          this.operations++;
          try {
            return await executeFn(args);
          } finally {
            this.operations--;
            this.checkIdle();
          }
        });
      },
    };
  }

  /** From now on new requests get 503 SHUTTING_DOWN and new WebSockets are refused. */
  beginDrain(): void {
    this.draining = true;
    // Answers still to come close their connection after them, so no keep-alive socket outlives the drain.
    for (const { res } of this.streams) if (!res.headersSent) res.setHeader('connection', 'close');
    this.checkIdle();
  }

  /** Resolves once no request or operation is in flight, or after `timeoutMs`; tells which. */
  async whenIdle(timeoutMs: number): Promise<boolean> {
    if (this.isIdle()) return true;
    let timer: NodeJS.Timeout | undefined;
    const idle = new Promise<boolean>((resolve) => this.idleWaiters.push(() => resolve(true)));
    const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const result = await Promise.race([idle, late]);
    clearTimeout(timer);
    return result;
  }

  /** Closes every WebSocket with `code` and `reason`, and resolves when they are closed or `timeoutMs` passed (the rest are cut). */
  async closeSockets(code: number, reason: string, timeoutMs: number): Promise<void> {
    const open = [...(this.wsServer?.clients ?? [])];
    const closed = open.map((socket) => (socket.readyState === socket.CLOSED ? Promise.resolve() : new Promise<void>((resolve) => socket.once('close', () => resolve()))));
    for (const socket of open) socket.close(code, reason);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(closed), new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
    for (const socket of open) if (socket.readyState !== socket.CLOSED) socket.terminate();
  }

  stopWatching(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  private isIdle(): boolean {
    return this.requests === 0 && this.operations === 0;
  }

  private checkIdle(): void {
    if (!this.isIdle()) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private watchSocket(socket: WebSocket): void {
    const state: SocketState = { pending: [], closing: false };
    this.sockets.set(socket, state);
    // graphql-ws waits for each message's send callback before it takes the next one from a stream; counting
    // the sends not yet called back tells how long the oldest has waited.
    const send = socket.send.bind(socket) as (data: unknown, options: object, callback: (error?: Error) => void) => void;
    socket.send = ((data: unknown, optionsOrCallback?: object | ((error?: Error) => void), callback?: (error?: Error) => void) => {
      const options = typeof optionsOrCallback === 'object' ? optionsOrCallback : {};
      const done = typeof optionsOrCallback === 'function' ? optionsOrCallback : callback;
      state.pending.push(Date.now());
      send(data, options, (error) => {
        state.pending.shift();
        done?.(error);
      });
      if (socket.bufferedAmount > this.limits.maxBufferedBytes) this.slowSocket(socket, state, `more than ${this.limits.maxBufferedBytes} bytes unsent`);
    }) as WebSocket['send'];
  }

  private slowSocket(socket: WebSocket, state: SocketState, why: string): void {
    if (state.closing) return;
    state.closing = true;
    this.logger.warn({ bufferedAmount: socket.bufferedAmount }, `closing a WebSocket that does not read: ${why}`);
    socket.close(CloseCode.SlowConsumer, `Slow consumer: ${why}; reconnect and resume with "after"`);
    // The close frame waits behind the unsent data; a client that never reads would keep it all alive.
    setTimeout(() => socket.terminate(), CLOSE_GRACE_MS).unref();
  }

  private sweep(): void {
    const now = Date.now();
    for (const socket of this.wsServer?.clients ?? []) {
      const state = this.sockets.get(socket);
      const oldest = state?.pending[0];
      if (state && oldest !== undefined && now - oldest > this.limits.sendTimeoutMs) {
        this.slowSocket(socket, state, `a message waited more than ${this.limits.sendTimeoutMs} ms to be sent`);
      }
    }
    for (const stream of this.streams) {
      const { res } = stream;
      if (!stream.events) continue;
      const tooMuch = res.writableLength > this.limits.maxBufferedBytes;
      stream.stalledSince = res.writableNeedDrain ? (stream.stalledSince ?? now) : undefined;
      if (tooMuch || (stream.stalledSince !== undefined && now - stream.stalledSince > this.limits.sendTimeoutMs)) {
        this.logger.warn({ writableLength: res.writableLength }, 'ending an event stream that does not read');
        this.streams.delete(stream);
        res.destroy();
      }
    }
  }
}

function refuseWhileClosing(res: ServerResponse): void {
  res.writeHead(503, { ...SECURITY_HEADERS, 'content-type': 'application/json', connection: 'close', 'retry-after': '5' });
  res.end(JSON.stringify({ errors: [{ message: 'The server is shutting down; retry shortly', extensions: { code: ErrorCode.ShuttingDown } }] }));
}
