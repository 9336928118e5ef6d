/** Baselines of the transfers and budget routes for unicode.security.test.ts (see ./types.ts). */
import { call, uid } from "../helpers";
import type { BaselineArea } from "./types";

async function ok(path: string, method: string, body: unknown): Promise<any> {
  const res = await call(method, path, body);
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${res.text}`);
  return res.json;
}

export const transfers: BaselineArea = {
  /** A second account to transfer to, one transfer to read back, and a budget to read and delete. */
  setup: async (f) => {
    const transferTo = uid("uni-to");
    await ok(`/v1/accounts/${transferTo}`, "PUT", { name: "transfer target" });
    const transferId = uid("uni-t");
    await ok("/v1/transfers", "POST", {
      transfer_id: transferId,
      from_account: f.account,
      to_account: transferTo,
      amount: 1,
    });
    await ok(`/v1/accounts/${f.account}/budget`, "PUT", { period: "month", limit: 10 });
    return { transferTo, transferId };
  },
  rows: {
    "POST /v1/transfers": (f) => ({
      body: {
        transfer_id: uid("t"),
        from_account: f.account,
        to_account: f.extra.transferTo ?? "",
        amount: 1,
        unit: "credits",
        reason: "rebalance",
      },
    }),
    "GET /v1/transfers/{transfer_id}": (f) => ({ params: { transfer_id: f.extra.transferId ?? "" } }),
    "PUT /v1/accounts/{account_id}/budget": () => ({ body: { unit: "credits", period: "month", limit: 10 } }),
    "GET /v1/accounts/{account_id}/budget": () => ({}),
    "DELETE /v1/accounts/{account_id}/budget": () => ({}),
    "GET /v1/reports/drawdown": (f) => ({
      query: {
        parent_id: f.account,
        unit: "credits",
        period: "month",
        from: "2026-01-01T00:00:00Z",
        to: "2026-02-01T00:00:00Z",
      },
    }),
  },
};
