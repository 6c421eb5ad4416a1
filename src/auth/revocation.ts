import { setMaxListeners } from 'node:events';
import type { DataSource } from 'typeorm';

/**
 * Revoked API keys, per DataSource, and one AbortSignal per key in use that aborts when the key is
 * revoked: open streams and sockets listen to it and end at once. A revocation made through this process
 * (`revokeApiKey`) aborts the signal after its transaction commits; one made elsewhere (the CLI, another
 * instance) is noticed by `watchRevocations` within its interval.
 */
interface Registry {
  revoked: Set<string>;
  controllers: Map<string, AbortController>;
  listeners: Set<(keyId: string) => void>;
}

const registries = new WeakMap<DataSource, Registry>();

function registryOf(dataSource: DataSource): Registry {
  let registry = registries.get(dataSource);
  if (!registry) {
    registry = { revoked: new Set(), controllers: new Map(), listeners: new Set() };
    registries.set(dataSource, registry);
  }
  return registry;
}

export class CredentialsRevoked extends Error {
  constructor(readonly keyId: string) {
    super('The credentials have been revoked');
  }
}

/** Aborts (with `CredentialsRevoked`) when the key is revoked; already aborted for a key known to be revoked. */
export function revocationSignal(dataSource: DataSource, keyId: string): AbortSignal {
  const registry = registryOf(dataSource);
  if (registry.revoked.has(keyId)) return AbortSignal.abort(new CredentialsRevoked(keyId));
  let controller = registry.controllers.get(keyId);
  if (!controller) {
    controller = new AbortController();
    // Every stream the credential opened listens for its revocation: one listener each, not a leak.
    setMaxListeners(0, controller.signal);
    // Every stream and socket the key opens listens: that is the design, not a leak.
    setMaxListeners(0, controller.signal);
    registry.controllers.set(keyId, controller);
  }
  return controller.signal;
}

export function isRevoked(dataSource: DataSource, keyId: string): boolean {
  return registryOf(dataSource).revoked.has(keyId);
}

/** Call once the revocation has committed: aborts the key's signal and tells the listeners (the verified-key cache). */
export function markRevoked(dataSource: DataSource, keyId: string): void {
  const registry = registryOf(dataSource);
  if (registry.revoked.has(keyId)) return;
  registry.revoked.add(keyId);
  for (const listener of registry.listeners) listener(keyId);
  const controller = registry.controllers.get(keyId);
  registry.controllers.delete(keyId);
  controller?.abort(new CredentialsRevoked(keyId));
}

export function onRevoked(dataSource: DataSource, listener: (keyId: string) => void): void {
  registryOf(dataSource).listeners.add(listener);
}

/** Key ids this process has handed out signals for (keys in use here). */
export function keysInUse(dataSource: DataSource): string[] {
  return [...registryOf(dataSource).controllers.keys()];
}
