/** A value that survives `JSON.stringify` → `JSON.parse` unchanged. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
/** A JSON object. */
export type JsonObject = { [key: string]: JsonValue };

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A JSON value as an entity column holds it. Not recursive on purpose: TypeORM's find-option types walk
 * every property of an entity, and a self-referencing type makes an app's `findOneBy(AuditLog, …)` fail
 * to compile ("type instantiation is excessively deep"). Narrow it with `isJsonObject` or a cast to JsonValue.
 */
export type StoredJson = string | number | boolean | unknown[] | { [key: string]: unknown };
