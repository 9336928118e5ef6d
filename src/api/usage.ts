/**
 * POST /v1/usage: a batch of usage events, each a debit with its own time.
 * The batch is grouped by account and each account's Durable Object gets
 * ONE call with its events in order (USAGE_PARALLEL accounts at a time), so
 * 1 000 events on one account are one round trip. Every event gets its own
 * result; the call is 200 once the batch itself parsed.
 */
import { z } from "@hono/zod-openapi";
import { ledgerStub } from "../account/stub";
import { MAX_USAGE_EVENTS, refusedEvent, USAGE_APPLIED_MAX, type UsageEvent, type UsageResult } from "../account/usage";
import { loadGlobalPolicy } from "../db/settings";
import { ApiError, ERROR_CODES, type Problem } from "../errors";
import { canonicalJson, sha256Hex } from "../ledger";
import { ID_PATTERN } from "../ledger/ids";
import { log } from "../log";
import { type AppContext, requireRole, validate, validBody } from "./context";
import { ChargeFields, RatingResultFields, resolveCharge } from "./meters";
import { inParallel } from "./parallel";
import { resource, route } from "./route";
import { AppliedSchema, Id, json, parseTime, problems, Time } from "./schemas";
import { requireAccountInScope } from "./scope";

/** Accounts of one batch called at once: each call carries all of that account's events. */
export const USAGE_PARALLEL = 6;
/** MAX_CLOCK_SKEW_MS when the var is absent or not a non-negative integer (5 minutes). */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 300_000;

export const UsageEventSchema = z
  .strictObject({
    event_id: Id.openapi({ description: "The debit id of this event (scope `debit` of its account)" }),
    account_id: Id,
    ...ChargeFields,
    occurred_at: Time.optional().openapi({
      description: "When the use happened (default: now); the entries' effective_at. At most MAX_CLOCK_SKEW_MS ahead",
    }),
  })
  .openapi("UsageEvent");

export const UsageInputSchema = z
  .strictObject({ events: z.array(UsageEventSchema).min(1).max(MAX_USAGE_EVENTS) })
  .openapi("UsageInput");

/** What must parse for the call to be 200: each event is then judged on its own. */
const Envelope = z.strictObject({ events: z.array(z.unknown()).min(1).max(MAX_USAGE_EVENTS) });

const UsageResultSchema = z
  .object({
    event_id: z.string().nullable().openapi({ description: "null when the event had no valid event_id" }),
    status: z.number().int().openapi({ description: "200, or the status the event's debit was refused with" }),
    code: z.enum(ERROR_CODES).optional(),
    detail: z.string().optional(),
    amount: z.number().int().optional(),
    unit: z.string().optional(),
    applied: AppliedSchema.optional().openapi({ description: `At most ${USAGE_APPLIED_MAX} lots` }),
    applied_more: z.boolean().optional(),
    replayed: z.boolean().optional().openapi({ description: "true when this event (or debit) was applied before" }),
    ...RatingResultFields,
  })
  .passthrough()
  .openapi("UsageResult");

/** MAX_CLOCK_SKEW_MS from the environment, parsed once per value. */
let skew: { text: string | undefined; ms: number } | null = null;
export function maxClockSkewMs(env: Env): number {
  const text: string | undefined = env.MAX_CLOCK_SKEW_MS;
  if (skew?.text !== text) {
    const n = Number(text);
    skew = { text, ms: text !== undefined && /^\d{1,12}$/.test(text) ? n : DEFAULT_MAX_CLOCK_SKEW_MS };
  }
  return skew.ms;
}

type Parsed = { ok: true; accountId: string; event: UsageEvent } | { ok: false; result: UsageResult };

/** One event, validated and priced; a bad one becomes its own 400 result. */
async function parseEvent(c: AppContext, raw: unknown): Promise<Parsed> {
  const sentId = (raw as { event_id?: unknown } | null)?.event_id;
  const eventId = typeof sentId === "string" && ID_PATTERN.test(sentId) ? sentId : null;
  try {
    const e = validate(UsageEventSchema, raw, "body");
    const charge = await resolveCharge(c, e);
    // The debit this event is, as a debit body would spell it: same body, same operation.
    const asDebit: Record<string, unknown> = { debit_id: e.event_id };
    for (const k of ["amount", "meter", "quantity", "unit", "occurred_at"] as const) {
      if (e[k] !== undefined) asDebit[k] = e[k];
    }
    const event: UsageEvent = {
      eventId: e.event_id,
      unit: charge.unit,
      amount: charge.amount,
      occurredAtMs: e.occurred_at === undefined ? null : parseTime(e.occurred_at),
      bodyHash: sha256Hex(canonicalJson(asDebit)),
      ...(charge.rating ? { rating: charge.rating } : {}),
    };
    return { ok: true, accountId: e.account_id, event };
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    return { ok: false, result: refusedEvent(eventId, err.problem) };
  }
}

interface Group {
  accountId: string;
  /** Where each of this account's events sits in the batch. */
  at: number[];
  events: UsageEvent[];
}

/** One account's events in one call; a refusal of the whole account answers each of its events. */
async function runGroup(c: AppContext, g: Group, globalPolicy: Awaited<ReturnType<typeof loadGlobalPolicy>>) {
  const caller = c.get("caller");
  const requestId = c.get("requestId");
  const everyEvent = (p: Problem) => g.events.map((e) => refusedEvent(e.eventId, p));
  try {
    await requireAccountInScope(c, g.accountId);
  } catch (err) {
    if (err instanceof ApiError) return everyEvent(err.problem);
    throw err;
  }
  const ctx = { accountId: g.accountId, actor: caller.actor, requestId, globalPolicy };
  try {
    const done = await ledgerStub(c.env, g.accountId).recordUsage(ctx, g.events, maxClockSkewMs(c.env));
    if (done.writes.applied > 0) {
      log({
        event: "ledger.write",
        request_id: requestId,
        account_id: g.accountId,
        actor: caller.actor,
        op: "usage",
        events: g.events.length,
        applied: done.writes.applied,
        entries: done.writes.entries,
        head_seq: done.writes.headSeq,
      });
    }
    return done.results;
  } catch (err) {
    // The call broke off: some events may have been applied. Each is idempotent, so the batch may be sent again.
    const error = err instanceof Error ? err.message : String(err);
    log({ event: "usage.error", request_id: requestId, account_id: g.accountId, events: g.events.length, error });
    return everyEvent({ code: "overloaded", detail: "the account could not be reached; send these events again" });
  }
}

export const usage = resource();

route(
  usage,
  {
    method: "post",
    path: "/v1/usage",
    summary: "Record a batch of usage events: each a debit with its own time, each with its own result",
    description:
      `1..${MAX_USAGE_EVENTS} events. Each is a debit idempotent on event_id in its account's \`debit\` scope. ` +
      "200 once the batch parses; each result carries the event's own status (400 for a bad event or clock_skew, " +
      "402, 404, 409, 429 velocity_limit, 503).",
    request: { body: { content: { "application/json": { schema: UsageInputSchema } }, required: true } },
    responses: {
      200: json(z.object({ results: z.array(UsageResultSchema) }).openapi("UsageResults")),
      ...problems(400, 401, 403, 413, 415),
    },
  },
  async (c) => {
    requireRole(c, ["admin", "gateway"]);
    const batch = validBody(c, Envelope);
    const results: UsageResult[] = new Array(batch.events.length);
    const groups = new Map<string, Group>();
    for (const [i, raw] of batch.events.entries()) {
      const parsed = await parseEvent(c, raw);
      if (!parsed.ok) {
        results[i] = parsed.result;
        continue;
      }
      const g = groups.get(parsed.accountId) ?? { accountId: parsed.accountId, at: [], events: [] };
      groups.set(parsed.accountId, g);
      g.at.push(i);
      g.events.push(parsed.event);
    }
    const globalPolicy = await loadGlobalPolicy(c.env.DB);
    const list = [...groups.values()];
    const answered = await inParallel(list, USAGE_PARALLEL, (g) => runGroup(c, g, globalPolicy));
    list.forEach((g, k) => {
      const got = answered[k] ?? [];
      g.at.forEach((i, j) => {
        results[i] =
          got[j] ?? refusedEvent(g.events[j]?.eventId ?? null, { code: "internal_error", detail: "no result" });
      });
    });
    return c.json({ results });
  },
);
