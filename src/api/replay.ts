/**
 * POST /v1/accounts/{account_id}/replay: the account rebuilt from its entries
 * in a scratch Durable Object (src/replay/, never the live one) and compared
 * with the live account, now or as of a past time. Read-only for the account.
 */
import { z } from "@hono/zod-openapi";
import type { SourceHead } from "../account/replay-source";
import { ApiError } from "../errors";
import { REPLAY_DIFF_MAX, REPLAY_MAX_ENTRIES } from "../ledger/replay-diff";
import { ledgerOf, pathId, requireRole, send, validBody } from "./context";
import { resource, route } from "./route";
import { AccountIdParam, json, parseTime, problems, Time } from "./schemas";

/** Who may replay an account. */
export const REPLAYERS = ["admin", "finance"] as const;

const ReplayInput = z
  .strictObject({
    as_of: Time.optional().openapi({
      description: "Replay the entries recorded at or before this time (not in the future); default: now",
    }),
  })
  .openapi("ReplayInput");

const DiffItemSchema = z
  .object({
    kind: z.enum(["lot", "total", "chain", "seq"]),
    grant_id: z.string().optional(),
    unit: z.string().optional(),
    credit_type: z.string().optional(),
    seq: z.number().int().optional(),
    field: z.string(),
    live: z.union([z.string(), z.number(), z.boolean(), z.null()]),
    replayed: z.union([z.string(), z.number(), z.boolean(), z.null()]),
  })
  .openapi("ReplayDiff");

const ReplayResult = z
  .object({
    account_id: z.string(),
    as_of: z.string(),
    replayed_entries: z.number().int(),
    head_seq: z.number().int(),
    head_hash: z.string(),
    matches: z.boolean(),
    diff: z.array(DiffItemSchema).openapi({ description: `At most ${REPLAY_DIFF_MAX} differences` }),
    diff_more: z.boolean(),
  })
  .openapi("ReplayResult");

export const replay = resource();

route(
  replay,
  {
    method: "post",
    path: "/v1/accounts/{account_id}/replay",
    summary: "Rebuild the account from its entries in a scratch object and compare it with the live one",
    description:
      "Folds every entry recorded at or before as_of (default now) into a fresh scratch Durable Object: per lot " +
      "Σ amount and Σ held_delta, per unit and credit type the same sums, the hash chain recomputed. Then compares " +
      "each live lot (as of as_of), the totals and the head with the rebuild. Never writes to the live account, D1 " +
      `or the outbox; the scratch object deletes its storage before answering. At most ${REPLAY_MAX_ENTRIES} ` +
      `entries per replay; at most ${REPLAY_DIFF_MAX} differences listed, then diff_more: true.`,
    request: {
      params: AccountIdParam,
      body: { content: { "application/json": { schema: ReplayInput } } },
    },
    responses: { 200: json(ReplayResult), ...problems(400, 401, 403, 404, 413, 415, 503) },
  },
  async (c) => {
    requireRole(c, REPLAYERS);
    const accountId = pathId(c, "account_id");
    const input = validBody(c, ReplayInput);
    const asOfMs = input.as_of === undefined ? null : (parseTime(input.as_of) as number);
    const live = ledgerOf(c, accountId);
    // The live object checks the account exists and as_of is not past its clock, and gives the head to replay to.
    const first = await live.replaySource(accountId, { kind: "head", asOfMs });
    if (!first.ok) return send(c, first);
    const head = first.body as unknown as SourceHead;
    if (head.count > REPLAY_MAX_ENTRIES) {
      throw new ApiError(
        "invalid_request",
        `the account holds ${head.count} entries by as_of; one replay rebuilds at most ${REPLAY_MAX_ENTRIES}: pass an earlier as_of`,
      );
    }
    const scratch = c.env.REPLAY.get(c.env.REPLAY.idFromName(`replay:${accountId}:${crypto.randomUUID()}`));
    const out = await scratch.run({ accountId, asOfMs, head });
    if (!out.ok) throw new ApiError(out.problem.code, out.problem.detail);
    return c.json(out.answer);
  },
);
