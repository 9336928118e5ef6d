/** /v1/alerts (list) and /v1/alert-settings (expiring windows, spike factor). */
import { z } from "@hono/zod-openapi";
import { loadAlertSettings, saveAlertSettings } from "../db/alert-settings";
import { alertView, listAlerts } from "../db/alerts";
import { ALERT_TYPES } from "../ledger";
import { recordChange } from "./audit";
import { READERS, requireRole, validBody, validQuery } from "./context";
import { resource, route } from "./route";
import { Id, json, Limit, problems, TimeIdCursor, timeIdCursor } from "./schemas";
import { requireFiltersInScope, requireUnscoped } from "./scope";

export const AlertSchema = z
  .object({
    id: z.string(),
    type: z.enum(ALERT_TYPES),
    account_id: z.string().nullable(),
    unit: z.string().nullable(),
    data: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])),
    created_at: z.string(),
    recorded_at: z.string(),
    dispatched_at: z.string().nullable(),
  })
  .openapi("Alert");

const AlertQuery = z.strictObject({
  type: z.enum(ALERT_TYPES).optional(),
  account_id: Id.optional(),
  cursor: TimeIdCursor.optional(),
  limit: Limit(500, 100),
});

const SettingsSchema = z
  .strictObject({
    expiring_days: z
      .array(z.number().int().min(1).max(365))
      .min(1)
      .max(5)
      .refine((a) => new Set(a).size === a.length, "no repeated windows"),
    spike_factor: z.number().int().min(2).max(1000),
    spike_trailing_hours: z.number().int().min(1).max(168),
  })
  .openapi("AlertSettings");

export const alerts = resource();

route(
  alerts,
  {
    method: "get",
    path: "/v1/alerts",
    summary: "Alerts, newest first: balance.low, credits.expiring, credits.expired, usage.spike, reconciliation.drift",
    request: { query: AlertQuery },
    responses: {
      200: json(z.object({ alerts: z.array(AlertSchema), next_cursor: z.string().nullable() })),
      ...problems(400, 401, 403),
    },
  },
  async (c) => {
    requireRole(c, READERS);
    const q = validQuery(c, AlertQuery);
    await requireFiltersInScope(c, [q.account_id]);
    const page = await listAlerts(c.env.DB, {
      type: q.type ?? null,
      accountId: q.account_id ?? null,
      before: q.cursor ?? null,
      limit: q.limit,
    });
    const last = page.rows[page.rows.length - 1];
    return c.json({
      alerts: page.rows.map(alertView),
      next_cursor: timeIdCursor(page.more, last && { atMs: last.created_at_ms, id: last.id }),
    });
  },
);

route(
  alerts,
  {
    method: "get",
    path: "/v1/alert-settings",
    summary: "Alert settings: credits.expiring windows in days, usage.spike factor and trailing hours",
    responses: { 200: json(SettingsSchema), ...problems(401, 403) },
  },
  async (c) => {
    requireRole(c, READERS);
    requireUnscoped(c);
    return c.json(await loadAlertSettings(c.env.DB));
  },
);

route(
  alerts,
  {
    method: "put",
    path: "/v1/alert-settings",
    summary: "Change alert settings (fields given replace; the next cron run uses them)",
    request: { body: { content: { "application/json": { schema: SettingsSchema.partial() } }, required: true } },
    responses: { 200: json(SettingsSchema), ...problems(400, 401, 403) },
  },
  async (c) => {
    requireRole(c, ["admin"]);
    requireUnscoped(c);
    const patch = validBody(c, SettingsSchema.partial());
    const before = await loadAlertSettings(c.env.DB);
    const next = { ...before, ...patch };
    await saveAlertSettings(c.env.DB, next);
    await recordChange(c, { action: "alert_settings.updated", target: "alert_settings", before, after: next });
    return c.json(next);
  },
);
