import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isObjectType, type GraphQLSchema } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { packageRoot } from '../shared/package-root.js';

/** Where the viewer is served. */
export const VIEWER_PATH = '/audit-log';

/**
 * The viewer runs its own code only: no inline script or style, no other origin. `connect-src 'self'`
 * covers same-origin `ws:`/`wss:` in every current browser (CSP level 3). Framing is same-origin only:
 * an app that embeds the viewer serves it under its own origin (a reverse proxy).
 */
export const VIEWER_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'self'",
].join('; ');

const SECURITY_HEADERS = {
  'content-security-policy': VIEWER_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

const TYPES: Record<string, string> = {
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
  png: 'image/png',
  ico: 'image/x-icon',
  json: 'application/json',
  map: 'application/json',
  webmanifest: 'application/manifest+json',
};

/** Only plain file names: nothing that could climb out of the folder. */
const ASSET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*\.([a-z0-9]+)$/;

/** Optional fields of `AuditLog` the viewer shows when this server's schema has them. */
const OPTIONAL_FIELDS = ['sequence', 'hash', 'previousHash'] as const;

/** What the page may offer, told through a `<meta>` tag (an inline script would need a CSP exception). */
export function viewerFeatures(schema: GraphQLSchema): string[] {
  const type = schema.getType('AuditLog');
  const fields = isObjectType(type) ? type.getFields() : {};
  const features: string[] = OPTIONAL_FIELDS.filter((name) => name in fields);
  if (schema.getMutationType()?.getFields().createViewerToken) features.push('viewerToken');
  return features;
}

export interface ViewerOptions {
  /** The built viewer. @default `<package>/dist/viewer` */
  dir?: string;
  /** From `viewerFeatures(schema)`. */
  features?: readonly string[];
}

/**
 * Serves the built viewer (`npm run build:viewer`) at `/audit-log`: `index.html` is never cached (it names
 * the current assets), the content-hashed files under `assets/` are cached for a year.
 */
export function useViewer(options: ViewerOptions = {}): Plugin {
  const dir = options.dir ?? join(packageRoot(), 'dist', 'viewer');
  const assets = new Map<string, Buffer>();
  const features = (options.features ?? []).join(' ');

  return {
    async onRequest({ url, request, endResponse, fetchAPI }) {
      const path = url.pathname;
      if (path !== VIEWER_PATH && !path.startsWith(`${VIEWER_PATH}/`)) return;
      const respond = (status: number, body: BodyInit | null, headers: Record<string, string>) =>
        endResponse(new fetchAPI.Response(request.method === 'HEAD' ? null : body, { status, headers: { ...SECURITY_HEADERS, ...headers } }));
      if (request.method !== 'GET' && request.method !== 'HEAD') return respond(405, null, { allow: 'GET, HEAD' });

      const rest = path.slice(VIEWER_PATH.length + 1);
      if (rest === '' || rest === 'index.html') {
        let html: string;
        try {
          html = await readFile(join(dir, 'index.html'), 'utf8');
        } catch {
          return respond(503, 'The viewer is not built. Run "npm run build:viewer".', { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
        }
        html = html.replace(/<meta name="auditql-features" content="[^"]*"\s*\/?>/, `<meta name="auditql-features" content="${features}" />`);
        return respond(200, html, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      }

      const hashed = rest.startsWith('assets/');
      const name = hashed ? rest.slice('assets/'.length) : rest;
      const match = ASSET_NAME.exec(name);
      const type = match ? TYPES[match[1]!] : undefined;
      if (!match || !type) return respond(404, 'Not found', { 'content-type': 'text/plain; charset=utf-8' });
      const key = hashed ? `assets/${name}` : name;
      let body = assets.get(key);
      if (!body) {
        try {
          body = await readFile(join(dir, key));
        } catch {
          return respond(404, 'Not found', { 'content-type': 'text/plain; charset=utf-8' });
        }
        if (hashed) assets.set(key, body);
      }
      return respond(200, new Uint8Array(body), {
        'content-type': type,
        'cache-control': hashed ? 'public, max-age=31536000, immutable' : 'public, max-age=3600',
      });
    },
  };
}
