import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { Scope } from '../auth/principal.js';
import type { ServerDeps } from '../schema/context.js';
import {
  EXPORT_CONTENT_TYPES,
  exportBytes,
  exportFileName,
  exportFilter,
  parseExportRequest,
  type ExportProgress,
  type ExportRequest,
} from '../services/audit-log-export.js';
import type { AuditLogFilter } from '../services/audit-log-filter.js';
import type { MetaActor } from '../services/meta-audit.js';
import { ErrorCode } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { authorizeHttp, errorResponse } from './http-auth.js';

export const EXPORT_PATH = '/export';

/** What the export needs of the server context (the Node request, to cut its connection). */
interface ExportServerContext {
  req?: IncomingMessage;
  socketAddress?: string;
}

/**
 * Query parameters that carry credentials on other services. Credentials in a URL end up in logs, browser
 * history and Referer headers: such a request is refused, whatever its headers hold.
 */
const CREDENTIAL_PARAMETERS = /^(access_?token|token|api_?key|x-api-key|key|authorization|auth|bearer|jwt|secret|password)$/i;
const PARAMETERS = new Set(['format', 'orderBy', 'filter', 'resource', 'resourceId', 'action', 'authorId', 'from', 'to', 'search', 'transactionId']);

/** The bytes an export's response stream holds before it stops pulling rows (besides the socket's own buffer). */
const HIGH_WATER_BYTES = 64 * 1024;

const STATUS: Record<string, number> = {
  [ErrorCode.BadUserInput]: 400,
  [ErrorCode.Forbidden]: 403,
  [ErrorCode.RateLimited]: 429,
  [ErrorCode.QueryTimeout]: 503,
  [ErrorCode.StorageUnavailable]: 503,
  [ErrorCode.ShuttingDown]: 503,
};

export interface ExportEndpointOptions {
  logger: Logger;
  /**
   * Exports the server runs at once (each holds a reader for as long as it lasts); one principal runs one
   * at a time. Past either: 429 RATE_LIMITED. @default 1
   */
  exportsAtOnce?: number;
}

/**
 * `GET /export?format=csv|ndjson|json&…filter…&orderBy=…`: the caller's tenant's entries that the filter
 * selects, streamed from one read cursor to the socket. Authorised like `auditLogs` (audit:read; a viewer
 * token's restriction applies), credentials in a header. `HEAD` answers the same status and headers
 * without reading anything (the viewer asks it to learn whether the server exports).
 *
 * Back-pressure: the response body is a Node stream pulling from an async generator; it asks for the next
 * batch only when the socket has taken what it holds, so a client that stops reading stops the cursor. One
 * that stays stalled past STREAM_SEND_TIMEOUT_MS is cut off, which ends the cursor and frees its reader;
 * so does a client that goes away, and the server's shutdown.
 */
export function useExportEndpoint(deps: ServerDeps, options: ExportEndpointOptions): Plugin<object, ExportServerContext> {
  const atOnce = Math.max(1, options.exportsAtOnce ?? 1);
  const running = new Set<string>();
  let total = 0;

  return {
    async onRequest({ url, request, endResponse, fetchAPI, serverContext }) {
      if (url.pathname !== EXPORT_PATH) return;
      const fail = (status: number, code: string, message: string, extensions: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
        endResponse(errorResponse(fetchAPI, status, code, message, extensions, headers));
      if (request.method !== 'GET' && request.method !== 'HEAD') return fail(405, ErrorCode.BadUserInput, 'Use GET (or HEAD)', {}, { allow: 'GET, HEAD' });
      const names = [...new Set(url.searchParams.keys())];
      const credential = names.find((name) => CREDENTIAL_PARAMETERS.test(name));
      if (credential !== undefined) {
        return fail(400, ErrorCode.BadUserInput, `Credentials go in a header ("Authorization: Bearer <token>" or "x-api-key: <key>"), never in the URL: "${credential}" is refused`, { argument: credential });
      }
      const caller = await authorizeHttp(deps, request, fetchAPI, { test: (principal) => principal.scopes.has(Scope.Read), refusal: 'Exports need the audit:read scope' });
      if ('response' in caller) return endResponse(caller.response);
      const { principal } = caller;

      let parsed: ExportRequest;
      let filter: AuditLogFilter;
      try {
        const unknown = names.filter((name) => !PARAMETERS.has(name));
        if (unknown.length > 0) throw new GraphQLError(`Unknown parameter ${unknown.map((n) => `"${n}"`).join(', ')}`, { extensions: { code: ErrorCode.BadUserInput, argument: unknown[0] } });
        parsed = parseExportRequest((name) => url.searchParams.getAll(name));
        filter = exportFilter(parsed, principal.tenantId, principal.restriction);
      } catch (error) {
        return endResponse(errorAnswer(fetchAPI, error, options.logger));
      }
      const headers = {
        'content-type': EXPORT_CONTENT_TYPES[parsed.format],
        'content-disposition': `attachment; filename="${exportFileName(principal.tenantId, parsed.format)}"`,
        'cache-control': 'no-store',
      };
      if (request.method === 'HEAD') return endResponse(new fetchAPI.Response(null, { status: 200, headers }));

      const slot = `${principal.tenantId}\u0000${principal.id}`;
      if (running.has(slot) || total >= atOnce) {
        const why = running.has(slot) ? 'One export at a time per caller' : `The server runs at most ${atOnce} export(s) at once`;
        return fail(429, ErrorCode.RateLimited, `${why}; retry when it has finished`, { retryAfter: 5 }, { 'retry-after': '5' });
      }
      running.add(slot);
      total++;
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        running.delete(slot);
        total--;
      };

      const progress: ExportProgress = { rows: 0, complete: false };
      const actor: MetaActor = {
        principal,
        audit: {
          tenantId: principal.tenantId,
          author: { id: principal.id, name: principal.name, type: principal.type },
          ip: serverContext.socketAddress ?? serverContext.req?.socket.remoteAddress ?? null,
          userAgent: request.headers.get('user-agent'),
          requestId: request.headers.get('x-request-id'),
        },
      };
      // Ends the connection: the client sees a cut download (never a complete-looking truncated file).
      const cut = () => serverContext.req?.socket.destroy();
      const chunks = watched(
        exportBytes(deps, filter, parsed.orderBy, parsed.format, { principal: slot }, progress),
        { stallMs: deps.limits.sendTimeoutMs, closing: deps.closing, cut },
        () => {
          release();
          record(deps, actor, parsed, progress, options.logger);
        },
      );
      // The first chunk is read before answering, so that a refusal (a busy reader, a timeout) still gets
      // its status code; after it, the status is sent and only a cut connection can report a failure.
      let head: IteratorResult<Buffer>;
      try {
        head = await chunks.next();
      } catch (error) {
        return endResponse(errorAnswer(fetchAPI, error, options.logger));
      }
      const body = Readable.from(resume(head, chunks), { objectMode: false, highWaterMark: HIGH_WATER_BYTES });
      body.on('error', (error) => {
        options.logger.error({ err: error }, 'export failed part-way; connection cut');
        cut();
      });
      endResponse(new fetchAPI.Response(body as unknown as ReadableStream, { status: 200, headers }));
    },
  };
}

async function* resume<T>(head: IteratorResult<T>, rest: AsyncGenerator<T>): AsyncGenerator<T> {
  if (head.done) return;
  yield head.value;
  yield* rest;
}

/**
 * Passes chunks on, and:
 * - cuts the connection when the consumer has not asked for the next chunk within `stallMs` (a client
 *   that stopped reading), or when the server starts shutting down;
 * - calls `done` once, however the export ends (finished, failed, cut, abandoned by the client).
 */
async function* watched<T>(chunks: AsyncGenerator<T>, watch: { stallMs: number; closing: AbortSignal; cut: () => void }, done: () => void): AsyncGenerator<T> {
  const onClosing = () => watch.cut();
  watch.closing.addEventListener('abort', onClosing, { once: true });
  try {
    for await (const chunk of chunks) {
      if (watch.closing.aborted) throw new GraphQLError('The server is shutting down', { extensions: { code: ErrorCode.ShuttingDown } });
      const stalled = setTimeout(watch.cut, watch.stallMs);
      try {
        yield chunk;
      } finally {
        clearTimeout(stalled);
      }
    }
  } finally {
    watch.closing.removeEventListener('abort', onClosing);
    done();
  }
}

function record(deps: ServerDeps, actor: MetaActor, request: ExportRequest, progress: ExportProgress, logger: Logger): void {
  deps.metaAudit
    .record(actor, { action: 'export', operation: 'export', filter: { ...request.filter, orderBy: request.orderBy }, data: { format: request.format, rows: progress.rows, complete: progress.complete } })
    .catch((error: unknown) => logger.error({ err: error }, 'recording an export of the audit log failed'));
}

/** A refusal with its code and status; anything unexpected is logged and answered as "Unexpected error." (500). */
function errorAnswer(fetchAPI: Parameters<typeof errorResponse>[0], error: unknown, logger: Logger): Response {
  const code = error instanceof GraphQLError ? (error.extensions?.code as string | undefined) : undefined;
  if (code && STATUS[code]) {
    const { http: _http, ...extensions } = (error as GraphQLError).extensions as Record<string, unknown>;
    const retry: Record<string, string> = typeof extensions.retryAfterMs === 'number' ? { 'retry-after': String(Math.ceil(extensions.retryAfterMs / 1000)) } : {};
    return errorResponse(fetchAPI, STATUS[code]!, code, (error as Error).message, extensions, retry);
  }
  logger.error({ err: error }, 'export failed');
  return errorResponse(fetchAPI, 500, 'INTERNAL_SERVER_ERROR', 'Unexpected error.');
}

