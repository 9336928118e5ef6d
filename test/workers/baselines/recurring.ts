/** Baselines of the recurring routes for unicode.security.test.ts (see ./types.ts). */
import { call, uid } from "../helpers";
import type { BaselineArea } from "./types";

/** A schedule whose first period is a year away: the baselines write no entries. */
const body = (recurringId: string) => ({
  recurring_id: recurringId,
  amount: 10,
  type: "promotional",
  unit: "credits",
  interval: "month",
  starts_at: new Date(Date.now() + 365 * 86_400_000).toISOString(),
  ends_at: new Date(Date.now() + 3 * 365 * 86_400_000).toISOString(),
  priority: 50,
  source: "plan",
  reason: "monthly allowance",
  expires: "end_of_period",
  rollover: { max_amount: 5, max_periods: 2 },
});

export const recurring: BaselineArea = {
  /** One schedule to cancel (cancelling it again answers the same). */
  setup: async (f) => {
    const recurringId = uid("uni-rec");
    const res = await call("POST", `/v1/accounts/${f.account}/recurring-grants`, body(recurringId));
    if (res.status !== 201) throw new Error(`recurring setup: ${res.status} ${res.text}`);
    return { recurringId };
  },
  rows: {
    "POST /v1/accounts/{account_id}/recurring-grants": () => ({ body: body(uid("rec")) }),
    "GET /v1/accounts/{account_id}/recurring-grants": () => ({}),
    "DELETE /v1/accounts/{account_id}/recurring-grants/{recurring_id}": (f) => ({
      params: { recurring_id: f.extra.recurringId ?? "" },
    }),
  },
};
