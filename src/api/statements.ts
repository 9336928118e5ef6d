/**
 * GET /v1/accounts/{account_id}/statement: one unit's figures and entries
 * over [from, to), signed with the receipt keys so a customer can check it
 * against /.well-known/jwks.json with SHA-256 alone (docs/receipts.md).
 */
import { z } from "@hono/zod-openapi";
import { ApiError } from "../errors";
import { STATEMENT_MAX_ENTRIES } from "../ledger/statement";
import { receiptKeys } from "../receipts/keys";
import { signStatement, type UnsignedStatement } from "../receipts/statement";
import { ledgerOf, pathId, READERS, requireRole, send, validQuery } from "./context";
import { EntrySchema } from "./ledger";
import { resource, route } from "./route";
import { AccountIdParam, json, parseTime, problems, Time, Unit } from "./schemas";

const StatementQuery = z
  .strictObject({
    from: Time.openapi({ description: "Start of the window, inclusive (by entry recorded_at)" }),
    to: Time.optional().openapi({
      description: "End of the window, exclusive; not after the account's clock. Required unless `as_of` is given",
    }),
    as_of: Time.optional().openapi({
      description:
        "The statement as it stood at this time: the entries recorded at or before it. Without `to`, the " +
        "window ends just after `as_of`; with `to`, `to` may not be later than `as_of`",
    }),
    unit: Unit.default("credits"),
  })
  .superRefine((q, ctx) => {
    if (q.to === undefined && q.as_of === undefined) {
      ctx.addIssue({ code: "custom", path: ["to"], message: "required unless as_of is given" });
    }
  });

/** The window's exclusive end: `to`, or just after `as_of` (entries recorded at or before it). */
function windowEnd(q: { to?: string; as_of?: string }): number {
  const toMs = q.to === undefined ? null : (parseTime(q.to) as number);
  if (q.as_of === undefined) return toMs as number;
  const asOfMs = parseTime(q.as_of) as number;
  if (toMs !== null && toMs > asOfMs) throw new ApiError("invalid_request", "to may not be later than as_of");
  return toMs ?? asOfMs + 1;
}

const Figure = (description: string) => z.number().int().openapi({ description });

export const StatementSchema = z
  .object({
    account_id: z.string(),
    unit: z.string(),
    from: z.string(),
    to: z.string(),
    opening: Figure("The unit's total (remaining in all lots, held or not) from the entries recorded before `from`"),
    granted: Figure("Σ amount of `grant` entries in the window"),
    consumed: Figure("−Σ amount of debit, hold.captured, receipt.settled and invoice entries"),
    expired: Figure("−Σ amount of grant.expired entries"),
    other: Figure("Σ amount of every other entry, signed: voids, refunds, reversals, transfers"),
    closing: Figure("opening + granted − consumed − expired + other: the total from the entries recorded before `to`"),
    entries: z.array(EntrySchema).openapi({ description: "The unit's entries recorded in [from, to), by seq" }),
    head: z
      .object({ seq: z.number().int(), hash: z.string() })
      .openapi({ description: "The account's last entry (any unit) recorded before `to`; seq 0 and 64 zeros if none" }),
    signature: z.string().openapi({
      description:
        'Compact JWS, ES256, kid from /.well-known/jwks.json, typ "statement+jwt"; payload {iss, sub, iat, sha256}, ' +
        "sha256 = hex SHA-256 of the RFC 8785 JCS of this statement without `signature`",
    }),
  })
  .openapi("Statement");

export const statements = resource();

route(
  statements,
  {
    method: "get",
    path: "/v1/accounts/{account_id}/statement",
    summary: "A signed statement of one unit over [from, to): opening, movements, closing, entries, chain head",
    description:
      `The window may hold at most ${STATEMENT_MAX_ENTRIES} entries of the account (all units); a longer one is ` +
      "400 invalid_request: narrow it. `to` may not be in the future, so a statement is final once served.",
    request: { params: AccountIdParam, query: StatementQuery },
    responses: { 200: json(StatementSchema), ...problems(400, 401, 403, 404) },
  },
  async (c) => {
    requireRole(c, READERS);
    const accountId = pathId(c, "account_id");
    const q = validQuery(c, StatementQuery);
    // Time has already refused anything parseTime cannot read.
    const fromMs = parseTime(q.from) as number;
    const toMs = windowEnd(q);
    const outcome = await ledgerOf(c, accountId).statement(accountId, q.unit, fromMs, toMs);
    if (!outcome.ok) return send(c, outcome);
    const unsigned = outcome.body as unknown as UnsignedStatement;
    // The issuer is the receipts' one: one gate, one `iss`, one key set.
    const issuer = c.env.RECEIPT_ISSUER || "credit-gate";
    const keys = await receiptKeys(c.env.RECEIPT_SIGNING_KEYS);
    const signature = await signStatement(keys, issuer, unsigned, Math.floor(Date.now() / 1000));
    return c.json({ ...unsigned, signature }, 200);
  },
);
