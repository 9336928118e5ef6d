/**
 * The one definition of what an id, a unit and a cursor look like. The API
 * schemas, the receipt verifier and the SDK all test against these.
 */

/** Ids (`account_id`, `grant_id`, …, and an `Idempotency-Key`): 1–128 of `[A-Za-z0-9._:-]`. */
export const ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
export const ID_RULE = "1-128 characters of [A-Za-z0-9._:-]";

/** Units: a lowercase letter, then up to 31 of `[a-z0-9_]`. */
export const UNIT_PATTERN = /^[a-z][a-z0-9_]{0,31}$/;
export const UNIT_RULE = "a unit: ^[a-z][a-z0-9_]{0,31}$";

/**
 * True when every string in `value` (keys included) is well-formed UTF-16 (no
 * lone surrogates) and no key is `__proto__`, which a copy into a plain
 * object would silently turn into a prototype and drop.
 */
export function wellFormed(value: unknown, depthLeft = 64): boolean {
  if (typeof value === "string") return value.isWellFormed();
  if (value === null || typeof value !== "object") return true;
  if (depthLeft <= 0) return false;
  if (Array.isArray(value)) return value.every((v) => wellFormed(v, depthLeft - 1));
  for (const [k, v] of Object.entries(value)) {
    if (k === "__proto__" || !k.isWellFormed() || !wellFormed(v, depthLeft - 1)) return false;
  }
  return true;
}
