/**
 * /v1/accounts/{account_id}/grants/{grant_id}/activate and /cancel: the
 * payment system settles a grant awaiting payment (src/account/awaiting.ts).
 * Activation issues it (its `grant` entry dated now) and raises
 * `grant.activated`; cancellation drops it. Both are idempotent by the grant
 * they name: a repeat answers the first result; the other one after either
 * is 409 grant_closed.
 */
import { z } from "@hono/zod-openapi";
import { AWAITING_TEXT_MAX } from "../ledger/awaiting";
import { recordChange } from "./audit";
import { ledgerOf, opContext, pathId, requireRole, send, validBody } from "./context";
import { GrantSchema } from "./grants";
import { resource, route } from "./route";
import { AccountIdParam, BalanceSchema, Id, json, problems } from "./schemas";

/** Who may activate or cancel a grant awaiting payment. */
export const SETTLERS = ["admin", "finance"] as const;

const Text = z.string().min(1).max(AWAITING_TEXT_MAX);

const ActivateInput = z
  .strictObject({
    payment_ref: Text.optional().openapi({ description: "The payment system's reference, kept with the grant" }),
  })
  .openapi("ActivateInput");

const CancelInput = z.strictObject({ reason: Text }).openapi("CancelInput");

const SettledResult = z.object({ grant: GrantSchema, balance: BalanceSchema });

const GrantPath = AccountIdParam.extend({ grant_id: Id });

export const awaiting = resource();

route(
  awaiting,
  {
    method: "post",
    path: "/v1/accounts/{account_id}/grants/{grant_id}/activate",
    summary: "Activate a grant awaiting payment: its lot is issued now, with a grant.activated alert",
    request: { params: GrantPath, body: { content: { "application/json": { schema: ActivateInput } } } },
    responses: { 200: json(SettledResult), ...problems(400, 401, 403, 404, 409, 413, 415, 503) },
  },
  async (c) => {
    requireRole(c, SETTLERS);
    const accountId = pathId(c, "account_id");
    const grantId = pathId(c, "grant_id");
    const input = validBody(c, ActivateInput);
    const stub = ledgerOf(c, accountId);
    const out = await stub.activateGrant(await opContext(c, accountId), grantId, input.payment_ref ?? null);
    if (out.ok && !out.replayed) {
      const grant = (out.body as { grant: unknown }).grant;
      await recordChange(c, {
        action: "grant.activated",
        target: `${accountId}:${grantId}`,
        before: null,
        after: grant,
        once: true,
      });
    }
    return send(c, out);
  },
);

route(
  awaiting,
  {
    method: "post",
    path: "/v1/accounts/{account_id}/grants/{grant_id}/cancel",
    summary: "Cancel a grant awaiting payment: it is dropped, no entry is written",
    request: { params: GrantPath, body: { content: { "application/json": { schema: CancelInput } }, required: true } },
    responses: { 200: json(SettledResult), ...problems(400, 401, 403, 404, 409, 413, 415) },
  },
  async (c) => {
    requireRole(c, SETTLERS);
    const accountId = pathId(c, "account_id");
    const grantId = pathId(c, "grant_id");
    const input = validBody(c, CancelInput);
    const stub = ledgerOf(c, accountId);
    const out = await stub.cancelGrant(await opContext(c, accountId), grantId, input.reason);
    if (out.ok && !out.replayed) {
      const grant = (out.body as { grant: unknown }).grant;
      await recordChange(c, {
        action: "grant.cancelled",
        target: `${accountId}:${grantId}`,
        before: null,
        after: grant,
        once: true,
      });
    }
    return send(c, out);
  },
);
