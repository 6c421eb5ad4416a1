import type { EntityMetadata } from 'typeorm';

/** How one entity is audited. Every field is optional; the defaults audit everything except known secrets. */
export interface EntityAuditOptions {
  /** `false` leaves the entity out entirely. @default true */
  enabled?: boolean;
  /** The `resource` recorded for it. @default the table name */
  resource?: string;
  /** Fields left out of data, previousData and the change check (e.g. `updatedAt`). */
  ignore?: string[];
  /** Fields stored as a fixed mask, never their value; the diff still says that they changed. */
  redact?: string[];
}

/** Settings for every audited entity of a DataSource. */
export interface AuditCaptureOptions {
  /** Redacted in every entity, matched case-insensitively and ignoring `_`/`-`, at any depth. @default DEFAULT_REDACTED_FIELDS */
  redact?: string[];
  /** Left out of every entity, same matching. */
  ignore?: string[];
  /** Dropped wherever they match, at any depth (e.g. signed URLs): field-name patterns. */
  drop?: RegExp[];
  /** Per-entity options by entity name or table name, for apps that define entities with `EntitySchema`. */
  entities?: Record<string, EntityAuditOptions>;
}

export const REDACTED = '[REDACTED]';

/** The usual secrets, redacted unless an app says otherwise. */
export const DEFAULT_REDACTED_FIELDS = [
  'password', 'passwordHash', 'passwordDigest', 'token', 'accessToken', 'refreshToken', 'idToken', 'secret',
  'clientSecret', 'apiKey', 'privateKey', 'sessionId', 'otp', 'totpSecret', 'creditCard', 'cardNumber', 'cvv', 'cvc', 'ssn',
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

const normalise = (field: string) => field.toLowerCase().replace(/[_-]/g, '');

/** Everything the capture needs to know about one entity, resolved once per metadata. */
export interface ResolvedEntityOptions {
  enabled: boolean;
  resource: string;
  isIgnored(field: string): boolean;
  isRedacted(field: string): boolean;
  isDropped(field: string): boolean;
}

export function resolveEntityOptions(metadata: EntityMetadata, capture: AuditCaptureOptions): ResolvedEntityOptions {
  const own =
    (typeof metadata.target === 'function' ? byTarget.get(metadata.target) : undefined) ??
    capture.entities?.[metadata.name] ??
    capture.entities?.[metadata.tableName] ??
    {};
  const redact = new Set([...(capture.redact ?? DEFAULT_REDACTED_FIELDS), ...(own.redact ?? [])].map(normalise));
  const ignore = new Set([...(capture.ignore ?? []), ...(own.ignore ?? [])].map(normalise));
  const drop = capture.drop ?? [];
  return {
    enabled: own.enabled !== false,
    resource: own.resource ?? metadata.tableName,
    isIgnored: (field) => ignore.has(normalise(field)),
    isRedacted: (field) => redact.has(normalise(field)),
    isDropped: (field) => drop.some((pattern) => pattern.test(field)),
  };
}
