import { createHash } from 'node:crypto';
import type { renderGraphiQL } from '@graphql-yoga/render-graphiql';

type RenderOptions = Parameters<typeof renderGraphiQL>[0];

function contentSecurityPolicy(html: string): string {
  const hashes = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => `'sha256-${createHash('sha256').update(m[1]!, 'utf8').digest('base64')}'`);
  return [
    "default-src 'none'",
    `script-src ${hashes.join(' ') || "'none'"}`,
    // The editor's web workers are built from blobs by that script.
    'worker-src blob:',
    // Monaco and GraphiQL set inline styles at run time.
    "style-src 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

export interface GraphiQLPage {
  /** yoga's `renderGraphiQL`. */
  render(options?: RenderOptions): Promise<string>;
  /** The Content-Security-Policy of the page `render` produced. */
  policy(): string | undefined;
}

/**
 * GraphiQL (development only) served from this package, never from a CDN: yoga's default page loads its
 * scripts from a third-party host, which would run with access to the API keys typed into the page.
 * `@graphql-yoga/render-graphiql` inlines the whole editor into one page; a Content-Security-Policy pins that
 * one inline script by its hash and lets the page talk to this origin only. The 9 MB bundle is loaded on the
 * first request for the page, so a production server never holds it.
 */
export function selfHostedGraphiQL(): GraphiQLPage {
  const pages = new Map<string, { html: string; policy: string }>();
  let last: string | undefined;
  return {
    async render(options) {
      const key = JSON.stringify(options ?? {});
      let page = pages.get(key);
      if (!page) {
        const { renderGraphiQL } = await import('@graphql-yoga/render-graphiql');
        const html = renderGraphiQL(options);
        page = { html, policy: contentSecurityPolicy(html) };
        pages.set(key, page);
      }
      last = page.policy;
      return page.html;
    },
    policy: () => last,
  };
}
