/**
 * A library must not change the globals of the app that imports it. graphql-yoga's fetch layer
 * (@whatwg-node/fetch) loads `urlpattern-polyfill`, which defines `globalThis.URLPattern` on Node 20 while
 * keeping its own reference for yoga. This module is the first one the server's entry points load, so it
 * sees the globals as the app left them; `restoreGlobals()`, called once the server's modules have loaded,
 * removes the polyfill again unless the app had defined URLPattern itself.
 *
 * (TypeORM also defines tslib's helpers as globals when it loads; the app loads TypeORM itself, so those
 * are not auditql's doing and are left alone.)
 */
const hadUrlPattern = Object.prototype.hasOwnProperty.call(globalThis, 'URLPattern');
let restored = false;

export function restoreGlobals(): void {
  if (restored) return;
  restored = true;
  if (!hadUrlPattern) delete (globalThis as { URLPattern?: unknown }).URLPattern;
}
