import type { Plugin } from 'graphql-yoga';

/** Headers every answer of this server carries, whatever produced it (API, health checks, errors, GraphiQL). */
export const SECURITY_HEADERS = {
  // Answers are JSON or event streams: a browser must never guess another type (and run it as HTML).
  'x-content-type-options': 'nosniff',
  // Audit entries are personal data: no browser or proxy cache may keep a copy (unless an answer says
  // otherwise for itself, as the viewer's content-hashed static files do).
  'cache-control': 'no-store',
} as const;

/**
 * Adds SECURITY_HEADERS to every response, and to GraphiQL's page (development only) its
 * Content-Security-Policy and a refusal to be framed.
 */
export function useSecurityHeaders(options: { htmlPolicy?: () => string | undefined } = {}): Plugin {
  return {
    onResponse({ response }) {
      response.headers.set('x-content-type-options', SECURITY_HEADERS['x-content-type-options']);
      if (!response.headers.has('cache-control')) response.headers.set('cache-control', SECURITY_HEADERS['cache-control']);
      const policy = options.htmlPolicy?.();
      if (policy && response.headers.get('content-type')?.startsWith('text/html')) {
        response.headers.set('content-security-policy', policy);
        response.headers.set('x-frame-options', 'DENY');
      }
    },
  };
}
