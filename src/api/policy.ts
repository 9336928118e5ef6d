/** Global and per-account consumption policy. */
import { z } from "@hono/zod-openapi";
import { storedSetting } from "../db/audit";
import { loadGlobalPolicy, mergeGlobalPolicy } from "../db/settings";
import { ApiError } from "../errors";
import { DEFAULT_POLICY, type Policy } from "../ledger";
import { AccountApprovalThresholdPatch, ApprovalThresholdPatch, ApprovalThresholdSchema } from "./approval-gate";
import { recordChange } from "./audit";
import { ledgerOf, pathId, requireRole, send, validBody } from "./context";
import { resource, route } from "./route";
import { AccountIdParam, json, PolicySchema, problems } from "./schemas";
import { requireUnscoped } from "./scope";
import { ConvertFrom } from "./units";

const PolicyPatch = PolicySchema.partial()
  .extend({ approval_threshold: ApprovalThresholdPatch.nullable().optional(), convert_from: ConvertFrom.optional() })
  .openapi("PolicyPatch");
/** What GET and PUT answer: the policy with its approval thresholds. */
const PolicyView = PolicySchema.extend({
  approval_threshold: ApprovalThresholdSchema,
  convert_from: ConvertFrom,
}).openapi("PolicyView");
const OverridePatch = z
  .strictObject({
    order: PolicySchema.shape.order.nullable().optional(),
    type_order: PolicySchema.shape.type_order.nullable().optional(),
    require_verified_for_promotional: z.boolean().nullable().optional(),
    hold_on_expiry: PolicySchema.shape.hold_on_expiry.nullable().optional(),
    approval_threshold: AccountApprovalThresholdPatch.nullable().optional(),
    convert_from: ConvertFrom.nullable().optional(),
  })
  .openapi("PolicyOverrides");

export const policy = resource();

route(
  policy,
  {
    method: "get",
    path: "/v1/policy",
    summary: "The global policy",
    responses: { 200: json(PolicyView), ...problems(401, 403, 503) },
  },
  async (c) => {
    requireRole(c, ["admin"]);
    requireUnscoped(c);
    const global = await loadGlobalPolicy(c.env.DB);
    if (global === null) throw new ApiError("overloaded", "the global policy cannot be read right now; retry");
    return c.json(global);
  },
);

route(
  policy,
  {
    method: "put",
    path: "/v1/policy",
    summary: "Merge fields into the global policy",
    request: { body: { content: { "application/json": { schema: PolicyPatch } }, required: true } },
    responses: { 200: json(PolicyView), ...problems(400, 401, 403) },
  },
  async (c) => {
    requireRole(c, ["admin"]);
    requireUnscoped(c);
    const patch = validBody(c, PolicyPatch);
    // Read fresh, not from this isolate's 4 s cache: the audit row's `before`
    // must be what D1 held (a concurrent PUT elsewhere can still slip between).
    const stored = (await storedSetting(c.env.DB, "policy")) as Partial<Policy> | null;
    // RFC 7396 merge: a null approval_threshold kind (or the whole member) drops it, as null means in the patch.
    const after = await mergeGlobalPolicy(c.env.DB, patch as Partial<Policy>);
    await recordChange(c, {
      action: "policy.updated",
      target: "policy",
      before: { ...DEFAULT_POLICY, ...stored },
      after,
    });
    return c.json(after);
  },
);

route(
  policy,
  {
    method: "get",
    path: "/v1/accounts/{account_id}/policy",
    summary: "The account's effective policy (global merged with its overrides)",
    request: { params: AccountIdParam },
    responses: { 200: json(PolicyView), ...problems(400, 401, 403, 404) },
  },
  async (c) => {
    requireRole(c, ["admin", "finance"]);
    const accountId = pathId(c, "account_id");
    return send(c, await ledgerOf(c, accountId).getPolicy(accountId, await loadGlobalPolicy(c.env.DB)));
  },
);

route(
  policy,
  {
    method: "put",
    path: "/v1/accounts/{account_id}/policy",
    summary: "Set the account's overrides field by field; null drops an override",
    request: {
      params: AccountIdParam,
      body: { content: { "application/json": { schema: OverridePatch } }, required: true },
    },
    responses: { 200: json(PolicyView), ...problems(400, 401, 403, 404) },
  },
  async (c) => {
    requireRole(c, ["admin", "finance"]);
    const accountId = pathId(c, "account_id");
    const patch = validBody(c, OverridePatch);
    const stub = ledgerOf(c, accountId);
    const global = await loadGlobalPolicy(c.env.DB);
    // The effective policy before, for the audit row. Its refusals (unknown
    // account, a global policy never seen) are the PUT's too, answered here
    // before anything is written.
    const before = await stub.getPolicy(accountId, global);
    if (!before.ok) return send(c, before);
    const outcome = await stub.putPolicy(accountId, patch, global);
    // The Durable Object is the source of truth: the row follows its success.
    if (outcome.ok) {
      await recordChange(c, {
        action: "account_policy.updated",
        target: accountId,
        before: before.body,
        after: outcome.body,
      });
    }
    return send(c, outcome);
  },
);
