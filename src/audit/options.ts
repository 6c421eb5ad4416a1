import { createHmac } from 'node:crypto';
import type { EntityMetadata } from 'typeorm';
import { createFieldMatcher, type FieldMatcher, type FieldRule } from './field-rules.js';

export type { FieldRule } from './field-rules.js';

/** How one entity is audited. Every field is optional; the defaults audit everything except known secrets. */
export interface EntityAuditOptions {
  /** `false` leaves the entity out entirely. @default true */
  enabled?: boolean;
  /** The `resource` recorded for it. @default the table name */
  resource?: string;
  /** Fields left out of data, previousData and the change check (e.g. `updatedAt`), added to the global list. */
  ignore?: FieldRule[];
  /** Fields stored as a fixed mask, never their value, added to the global list; the entry still says that they changed. */
  redact?: FieldRule[];
  /** Fields never redacted in this entity, even when a redaction rule matches them. */
  unredact?: FieldRule[];
}

/** Why a change was recorded without its full before or after image. */
export interface CaptureWarning {
  /** The entity's table. */
  resource: string;
  action: string;
  message: string;
  cause?: unknown;
}

/** Settings for every audited entity of a DataSource. */
export interface AuditCaptureOptions {
  /**
   * Redacted in every entity, at any depth of `data`, `previousData` and `meta`, matched by name part
   * (see field-rules.ts: `token` matches `accessToken` and `refresh_token`). Replaces the defaults; spread
   * `DEFAULT_REDACTED_FIELDS` to extend them. @default DEFAULT_REDACTED_FIELDS
   */
  redact?: FieldRule[];
  /** Never redacted, even when a `redact` rule matches (e.g. `tokenCount`). */
  unredact?: FieldRule[];
  /** Left out of every entity (and the change check), same matching. */
  ignore?: FieldRule[];
  /** Dropped wherever they match, at any depth (e.g. signed URLs), same matching. */
  drop?: FieldRule[];
  /**
   * A secret (at least 16 bytes) that lets the entries of a record whose primary key is redacted (or dropped)
   * still share a `resourceId`: the key is stored as `hmac-sha256:<hex>`, the HMAC-SHA256 of its text under
   * this secret. Without a secret such a key is stored as `[REDACTED]`. Never a plain hash: a token, a PIN or
   * an e-mail address is guessed from its unkeyed digest by trying candidates. @default undefined
   */
  redactedKeySecret?: string | Buffer;
  /** Per-entity options by entity name or table name, for apps that define entities with `EntitySchema`. */
  entities?: Record<string, EntityAuditOptions>;
  /**
   * Called when a change was recorded with `meta.auditCapture = "partial"` (its rows could not be read): the
   * app's write went ahead. @default a Node process warning (`process.emitWarning`, code `AUDITQL_PARTIAL_CAPTURE`),
   * once per entity, action and reason
   */
  onWarning?: (warning: CaptureWarning) => void;
}

/** What a redacted value is stored as. */
export const REDACTED = '[REDACTED]';

/**
 * The usual secrets, redacted unless an app says otherwise. Matched by name part, so `token` covers
 * `accessToken`, `refresh_token`, `idToken`, `secretToken`; `password` covers `passwordHash`, `userPassword`.
 */
export const DEFAULT_REDACTED_FIELDS: readonly string[] = [
  'password', 'passwd', 'passphrase', 'secret', 'token', 'apiKey', 'accessKey', 'privateKey', 'credential',
  'sessionId', 'cookie', 'authorization', 'otp', 'creditCard', 'cardNumber', 'cvv', 'cvc', 'ssn',
];

const byTarget = new WeakMap<object, EntityAuditOptions>();

/**
 * Class decorator: `@Audited({ ignore: ['updatedAt'], redact: ['pin'] })` on an entity class.
 * `@Audited({ enabled: false })` opts it out.
 */
export function Audited(options: EntityAuditOptions = {}): ClassDecorator {
  return (target) => {
    byTarget.set(target, options);
  };
}

/** The same as `@Audited`, without a decorator. */
export function auditEntity(target: object, options: EntityAuditOptions): void {
  byTarget.set(target, options);
}

/** Everything the capture needs to know about one entity, resolved once per metadata. */
export interface ResolvedEntityOptions {
  enabled: boolean;
  resource: string;
  isIgnored: FieldMatcher;
  isRedacted: FieldMatcher;
  isDropped: FieldMatcher;
  /** What a redacted or dropped primary key value is stored as in `resourceId`. */
  maskKey: (value: string) => string;
}

/**
 * The stand-in for a key value that must not be stored (see `redactedKeySecret`). Keyed, so that the entries of
 * one record still group together while nobody without the secret can test a guess against them; fails at
 * configuration, not in an app's write, when the secret is too short to be one.
 */
export function keyMask(secret: string | Buffer | undefined): (value: string) => string {
  if (secret === undefined) return () => REDACTED;
  if (Buffer.byteLength(secret) < 16) throw new TypeError('auditql: redactedKeySecret must be at least 16 bytes');
  return (value) => `hmac-sha256:${createHmac('sha256', secret).update(value).digest('hex')}`;
}

export function resolveEntityOptions(metadata: EntityMetadata, capture: AuditCaptureOptions): ResolvedEntityOptions {
  const own =
    (typeof metadata.target === 'function' ? byTarget.get(metadata.target) : undefined) ??
    capture.entities?.[metadata.name] ??
    capture.entities?.[metadata.tableName] ??
    {};
  return {
    enabled: own.enabled !== false,
    resource: own.resource ?? metadata.tableName,
    isIgnored: createFieldMatcher({ match: [...(capture.ignore ?? []), ...(own.ignore ?? [])] }),
    isRedacted: createFieldMatcher({
      match: [...(capture.redact ?? DEFAULT_REDACTED_FIELDS), ...(own.redact ?? [])],
      allow: [...(capture.unredact ?? []), ...(own.unredact ?? [])],
    }),
    isDropped: createFieldMatcher({ match: capture.drop ?? [] }),
    maskKey: keyMask(capture.redactedKeySecret),
  };
}
