/**
 * Shared zod schemas: they validate every request and produce the OpenAPI
 * document. Object schemas are strict: unknown fields are refused.
 */
import { z } from "@hono/zod-openapi";
import { CREDIT_TYPES, HOLD_ON_EXPIRY, MAX_AMOUNT, SORT_KEYS } from "../ledger";
import { ID_PATTERN, ID_RULE, UNIT_PATTERN, UNIT_RULE } from "../ledger/ids";

export { ID_PATTERN };
export const Id = z.string().regex(ID_PATTERN, ID_RULE);
export const Unit = z.string().regex(UNIT_PATTERN, UNIT_RULE);
export const Amount = z
  .number()
  .int()
  .min(1)
  .max(MAX_AMOUNT)
  .openapi({ description: "Integer in the unit's smallest denomination, 1..10^15", example: 3 });
export const ShortText = z.string().min(1).max(256);
export const Metadata = z
  .record(z.string().max(64), z.string().max(512))
  .refine((m) => Object.keys(m).length <= 32, "at most 32 metadata pairs");

/** RFC 3339 with any offset, `T`/`Z` in any case; parsed to epoch ms (fraction truncated to ms). */
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
export function parseTime(text: string): number | null {
  const m = RFC3339.exec(text);
  if (!m) return null;
  const [, y, mo, d, h, mi, s, frac = "", off = "Z"] = m;
  const ms = frac ? `.${frac.slice(1, 4).padEnd(3, "0")}` : "";
  const normalized = `${y}-${mo}-${d}T${h}:${mi}:${s}${ms}${off.toUpperCase()}`;
  const value = Date.parse(normalized);
  if (Number.isNaN(value)) return null;
  // Date.parse rolls over impossible dates (Feb 30); refuse them.
  const check = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)));
  if (
    check.getUTCDate() !== Number(d) ||
    check.getUTCMonth() !== Number(mo) - 1 ||
    Number(h) > 23 ||
    Number(mi) > 59 ||
    Number(s) > 59
  ) {
    return null;
  }
  return value;
}
export const Time = z
  .string()
  .refine((t) => parseTime(t) !== null, "an RFC 3339 time")
  .openapi({ example: "2026-11-25T07:31:00.000Z" });

export const CreditTypeSchema = z.enum(CREDIT_TYPES);

/** A `limit` query parameter: an integer string from 1 to `max`, `fallback` when absent. */
export const Limit = (max: number, fallback: number) =>
  z
    .string()
    .regex(new RegExp(`^\\d{1,${String(max).length}}$`), `an integer from 1 to ${max}`)
    .transform(Number)
    .refine((n) => n >= 1 && n <= max, `an integer from 1 to ${max}`)
    .default(fallback);

/** A keyset position `<epoch ms>:<id>`, as served in `next_cursor` by newest-first lists. */
export interface TimeIdPosition {
  atMs: number;
  id: string;
}

/** The `cursor` query parameter of a newest-first list: parsed to the position it names. */
export const TimeIdCursor = z
  .string()
  .regex(/^\d{1,15}:[A-Za-z0-9._:-]{1,256}$/, "a next_cursor from a previous page")
  .transform((s): TimeIdPosition => {
    const at = s.indexOf(":");
    return { atMs: Number(s.slice(0, at)), id: s.slice(at + 1) };
  });

/** The `next_cursor` that resumes after `last` (null: this was the last page). */
export const timeIdCursor = (more: boolean, last: { atMs: number; id: string } | undefined): string | null =>
  more && last ? `${last.atMs}:${last.id}` : null;

export const BalanceSchema = z
  .object({
    account_id: z.string(),
    unit: z.string(),
    as_of: z.string(),
    available: z.number().int(),
    held: z.number().int(),
    by_type: z.object({ promotional: z.number().int(), compensatory: z.number().int(), purchased: z.number().int() }),
    expiring: z.array(z.object({ grant_id: z.string(), amount: z.number().int(), expires_at: z.string() })),
    expiring_more: z
      .boolean()
      .openapi({ description: "true when `expiring` was cut (a read lists 1 000 at most, a write response 10)" }),
    pending: z.array(z.object({ grant_id: z.string(), amount: z.number().int(), effective_at: z.string() })),
    pending_more: z.boolean().openapi({ description: "true when `pending` was cut" }),
    // Grants awaiting payment (src/account/awaiting.ts): listed, never in available, held or by_type.
    awaiting_payment: z.array(
      z.object({
        grant_id: z.string(),
        amount: z.number().int(),
        type: CreditTypeSchema,
        created_at: z.string(),
        topup: z.boolean(),
      }),
    ),
    awaiting_payment_more: z.boolean().openapi({ description: "true when `awaiting_payment` was cut" }),
  })
  .openapi("Balance");

export const AppliedSchema = z.array(
  z.object({ grant_id: z.string(), type: CreditTypeSchema, amount: z.number().int() }),
);
/** Beside `applied`: true when the list was cut (a write response lists 100 lots at most). */
export const AppliedMore = z.boolean().openapi({ description: "true when `applied` was cut" });

export const ProblemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    code: z.string(),
    detail: z.string(),
  })
  .passthrough()
  .openapi("Problem");

export const PolicySchema = z
  .strictObject({
    order: z
      .array(z.enum(SORT_KEYS))
      .min(1)
      .max(SORT_KEYS.length)
      .refine((a) => new Set(a).size === a.length, "no repeated keys"),
    type_order: z
      .array(CreditTypeSchema)
      .min(1)
      .max(3)
      .refine((a) => new Set(a).size === a.length, "no repeated types"),
    require_verified_for_promotional: z.boolean(),
    hold_on_expiry: z.enum(HOLD_ON_EXPIRY),
  })
  .openapi("Policy");

export const AccountIdParam = z.object({ account_id: Id.openapi({ param: { name: "account_id", in: "path" } }) });

/** Standard error responses for the OpenAPI document. */
export function problems(...statuses: number[]) {
  const out: Record<
    number,
    { description: string; content: { "application/problem+json": { schema: typeof ProblemSchema } } }
  > = {};
  for (const s of statuses)
    out[s] = { description: "problem+json", content: { "application/problem+json": { schema: ProblemSchema } } };
  return out;
}

export const json = <T extends z.ZodType>(schema: T, description = "OK") => ({
  description,
  content: { "application/json": { schema } },
});
