import type { YogaServerOptions } from 'graphql-yoga';

type CorsOption = YogaServerOptions<object, object>['cors'];

/**
 * Cross-origin access, from `CORS_ORIGINS`. None by default: browsers then refuse to let another site's
 * page read any answer. An allow-list opens it to exactly those origins, `*` to any. Credentials are never
 * allowed cross-origin: the API authenticates with the `Authorization` / `x-api-key` headers, which a page
 * sends explicitly, so cookies and TLS client certificates have no part in it.
 *
 * A function rather than yoga's `origin` list: for a list, yoga answers an origin that is not on it with
 * `Access-Control-Allow-Origin: null` plus credentials, and a one-item list or `*` with credentials too.
 */
export function corsPolicy(origins: readonly string[]): CorsOption {
  if (origins.length === 0) return false;
  const any = origins.includes('*');
  const allowed = new Set(origins);
  return (request: Request) => {
    const origin = request.headers.get('origin');
    if (origin === null || (!any && !allowed.has(origin))) return false;
    return {
      // Echoed even for `*`: yoga turns any origin option containing `*` into an echo of the request's.
      origin,
      credentials: false,
      methods: ['GET', 'POST'],
      allowedHeaders: ['authorization', 'x-api-key', 'content-type', 'accept', 'x-graphql-yoga-csrf', 'x-request-id'],
      maxAge: 600,
    };
  };
}
