import { createGraphQLError, type Plugin } from 'graphql-yoga';

const tooLarge = () => createGraphQLError('Request body too large', { extensions: { http: { status: 413 }, code: 'REQUEST_ENTITY_TOO_LARGE' } });

/** Only one non-negative integer is a Content-Length (a list of them is a request-smuggling attempt). */
const CONTENT_LENGTH = /^\d+$/;

/**
 * The request body limit (MAX_BODY_BYTES), in place of yoga's `maxRequestBodySize`, which pipes every body
 * through a stream that counts its bytes: per request a stream pipeline, an AbortController and, when the
 * pipeline ends, an AbortError with its stack trace, ~10 % of the event loop's time under `logEvent` load
 * (CPU profile). A body with a Content-Length cannot be longer than that: the HTTP parser reads no more, and
 * refuses a request that also declares chunked transfer. So a declared length is checked (400 when it is not
 * one number, 413 over the limit, as yoga answers) and the body read as it is; only a body of unknown length
 * (chunked) is counted as it arrives and cut with 413 once it passes the limit, as yoga does it.
 *
 * Listed after every plugin that may register a request parser, so it wraps the one chosen.
 */
export function useBodyLimit(limit: number): Plugin {
  return {
    onRequestParse({ request, requestParser, setRequestParser, fetchAPI }) {
      const declared = request.headers.get('content-length');
      if (declared !== null) {
        if (!CONTENT_LENGTH.test(declared)) throw createGraphQLError('Content-Length header is invalid.', { extensions: { http: { status: 400 }, code: 'BAD_REQUEST' } });
        if (Number(declared) > limit) throw tooLarge();
        return;
      }
      if (requestParser === undefined || request.body === null) return;
      setRequestParser((req) => requestParser(counted(req, limit, fetchAPI)));
    },
  };
}

/** The request with its body counted as it is read, failing with 413 past `limit` bytes. */
function counted(request: Request, limit: number, fetchAPI: { Request: typeof Request; TransformStream: typeof TransformStream }): Request {
  const body = request.body;
  if (body === null) return request;
  let read = 0;
  // A native stream takes the native TransformStream; the server adapter's own stream takes its own.
  const Transform = body instanceof ReadableStream ? globalThis.TransformStream : fetchAPI.TransformStream;
  const limited = body.pipeThrough(
    new Transform<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        read += chunk.byteLength;
        if (read > limit) controller.error(tooLarge());
        else controller.enqueue(chunk);
      },
    }),
  );
  return new fetchAPI.Request(request.url, { method: request.method, headers: request.headers, signal: request.signal, body: limited, duplex: 'half' } as RequestInit);
}
