/** Baselines of the awaiting-payment and top-up routes for unicode.security.test.ts (see ./types.ts). */
import { call, uid } from "../helpers";
import type { BaselineArea } from "./types";

async function awaiting(account: string, grantId: string): Promise<void> {
  const res = await call("POST", `/v1/accounts/${account}/grants`, {
    grant_id: grantId,
    amount: 10,
    type: "purchased",
    awaiting_payment: true,
  });
  if (res.status !== 201) throw new Error(`topup setup: ${res.status} ${res.text}`);
}

export const topup: BaselineArea = {
  /** One grant awaiting payment to activate, one to cancel (repeating either answers the same), and a rule. */
  setup: async (f) => {
    const activateId = uid("uni-aw-act");
    const cancelId = uid("uni-aw-can");
    await awaiting(f.account, activateId);
    await awaiting(f.account, cancelId);
    // A threshold of 1: the fixture's operations never leave it below, so the baselines request nothing.
    const rule = await call("PUT", `/v1/accounts/${f.account}/top-up`, { unit: "tokens", below: 1, amount: 10 });
    if (rule.status !== 200) throw new Error(`topup setup: ${rule.status} ${rule.text}`);
    return { awaitingActivateId: activateId, awaitingCancelId: cancelId };
  },
  rows: {
    "POST /v1/accounts/{account_id}/grants/{grant_id}/activate": (f) => ({
      params: { grant_id: f.extra.awaitingActivateId ?? "" },
      body: { payment_ref: "pi_123" },
    }),
    "POST /v1/accounts/{account_id}/grants/{grant_id}/cancel": (f) => ({
      params: { grant_id: f.extra.awaitingCancelId ?? "" },
      body: { reason: "payment failed" },
    }),
    "PUT /v1/accounts/{account_id}/top-up": () => ({
      body: {
        unit: "credits",
        below: 1,
        amount: 500,
        max_per_month: 1000,
        grant: {
          type: "purchased",
          cost_basis: { amount: 500, currency: "USD", tax: { amount: 95, jurisdiction: "DE" } },
          expires_in_days: 30,
        },
      },
    }),
    "GET /v1/accounts/{account_id}/top-up": () => ({ query: { unit: "credits" } }),
    "DELETE /v1/accounts/{account_id}/top-up": () => ({ query: { unit: "tokens" } }),
  },
};
