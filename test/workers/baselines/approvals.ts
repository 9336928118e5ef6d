/**
 * Baselines of the approvals routes for unicode.security.test.ts (see ./types.ts).
 * The setup makes an account whose grant threshold is 1 and has a finance key
 * ask for two grants above it: two pending approvals, one to approve and one
 * to reject (the test sends as the admin token, which is not the asker).
 */
import { call, uid } from "../helpers";
import type { BaselineArea } from "./types";

async function pending(account: string, token: string): Promise<string> {
  const res = await call(
    "POST",
    `/v1/accounts/${account}/grants`,
    { grant_id: uid("g-apr"), amount: 5, type: "purchased" },
    { token },
  );
  if (res.status !== 202) throw new Error(`approval baseline: ${res.status} ${res.text}`);
  return res.json.approval_id;
}

export const approvals: BaselineArea = {
  setup: async () => {
    const account = uid("apr-base");
    const put = await call("PUT", `/v1/accounts/${account}`, { name: "approvals fixture" });
    if (put.status >= 300) throw new Error(`approvals account: ${put.status} ${put.text}`);
    const policy = await call("PUT", `/v1/accounts/${account}/policy`, { approval_threshold: { grant: 1 } });
    if (policy.status !== 200) throw new Error(`approvals policy: ${policy.status} ${policy.text}`);
    const key = await call("POST", "/v1/api-keys", { name: uid("apr-asker"), role: "finance" });
    if (key.status !== 201) throw new Error(`approvals key: ${key.status} ${key.text}`);
    return {
      approvalToApprove: await pending(account, key.json.key),
      approvalToReject: await pending(account, key.json.key),
    };
  },
  rows: {
    "GET /v1/approvals": () => ({ query: { status: "pending", cursor: "1:apr_x", limit: "10" } }),
    "GET /v1/approvals/{approval_id}": (f) => ({ params: { approval_id: f.extra.approvalToApprove ?? "" } }),
    "POST /v1/approvals/{approval_id}/approve": (f) => ({
      params: { approval_id: f.extra.approvalToApprove ?? "" },
      body: { note: "checked against the contract" },
    }),
    "POST /v1/approvals/{approval_id}/reject": (f) => ({
      params: { approval_id: f.extra.approvalToReject ?? "" },
      body: { reason: "not agreed" },
    }),
  },
};
