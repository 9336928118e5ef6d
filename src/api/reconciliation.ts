/** /v1/reconciliation/runs: what each reconciliation run checked and every drift it found. */
import { z } from "@hono/zod-openapi";
import { getRun, listRuns, runView } from "../db/reconciliation";
import { ApiError } from "../errors";
import { pathId, READERS, requireRole, validQuery } from "./context";
import { resource, route } from "./route";
import { Id, json, Limit, problems, TimeIdCursor, timeIdCursor } from "./schemas";
import { requireUnscoped } from "./scope";

const RunSchema = z
  .object({
    id: z.string(),
    started_at: z.string(),
    finished_at: z.string(),
    accounts_checked: z.number().int(),
    accounts_lagging: z.number().int(),
    accounts_failed: z.number().int(),
    drifts: z.number().int(),
    entries_verified: z.number().int(),
    duration_ms: z.number().int(),
  })
  .openapi("ReconciliationRun");

const DriftSchema = z
  .object({
    account_id: z.string(),
    kind: z.enum(["seq_gap", "head_hash", "balance", "held", "chain", "d1_ahead"]),
    unit: z.string().nullable(),
    credit_type: z.string().nullable(),
    expected: z.string().nullable().openapi({ description: "What the Durable Object (the source of truth) says" }),
    actual: z.string().nullable().openapi({ description: "What D1 says" }),
    detail: z.string(),
    detected_at: z.string(),
  })
  .openapi("ReconciliationDrift");

const RunsQuery = z.strictObject({
  cursor: TimeIdCursor.optional(),
  limit: Limit(200, 50),
});

export const reconciliation = resource();

route(
  reconciliation,
  {
    method: "get",
    path: "/v1/reconciliation/runs",
    summary: "Reconciliation runs, newest first",
    request: { query: RunsQuery },
    responses: {
      200: json(z.object({ runs: z.array(RunSchema), next_cursor: z.string().nullable() })),
      ...problems(400, 401, 403),
    },
  },
  async (c) => {
    requireRole(c, READERS);
    requireUnscoped(c);
    const q = validQuery(c, RunsQuery);
    const page = await listRuns(c.env.DB, q.limit, q.cursor ?? null);
    const last = page.runs[page.runs.length - 1];
    return c.json({
      runs: page.runs.map(runView),
      next_cursor: timeIdCursor(page.more, last && { atMs: last.started_at_ms, id: last.id }),
    });
  },
);

route(
  reconciliation,
  {
    method: "get",
    path: "/v1/reconciliation/runs/{id}",
    summary: "One reconciliation run with its drifts (up to 1000)",
    request: { params: z.object({ id: Id }) },
    responses: {
      200: json(z.object({ run: RunSchema, drifts: z.array(DriftSchema) })),
      ...problems(400, 401, 403, 404),
    },
  },
  async (c) => {
    requireRole(c, READERS);
    requireUnscoped(c);
    const id = pathId(c, "id");
    const found = await getRun(c.env.DB, id);
    if (!found) throw new ApiError("not_found", `reconciliation run ${id} does not exist`);
    return c.json({ run: runView(found.run), drifts: found.drifts });
  },
);
