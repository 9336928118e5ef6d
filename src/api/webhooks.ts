/** /v1/webhooks: admins register endpoints for alert types; deliveries and their attempts are listed per endpoint. */
import { z } from "@hono/zod-openapi";
import { createWebhook, deleteWebhook, getWebhook, listDeliveries, listWebhooks, webhookView } from "../db/webhooks";
import { ApiError } from "../errors";
import { ALERT_TYPES } from "../ledger";
import { generateSecret, SECRET_PATTERN, secretKey } from "../webhooks/sign";
import { recordChange } from "./audit";
import { pathId, requireRole, validBody, validQuery } from "./context";
import { resource, route } from "./route";
import { Id, json, Limit, problems, ShortText } from "./schemas";
import { requireUnscoped } from "./scope";

const WebhookInput = z
  .strictObject({
    url: z
      .string()
      .max(2048)
      .refine((u) => {
        try {
          const parsed = new URL(u);
          return (parsed.protocol === "https:" || parsed.protocol === "http:") && parsed.username === "";
        } catch {
          return false;
        }
      }, "an http(s) URL without credentials"),
    event_types: z
      .array(z.enum(ALERT_TYPES))
      .min(1)
      .refine((a) => new Set(a).size === a.length, "no repeated event types"),
    secret: z
      .string()
      .regex(SECRET_PATTERN, "whsec_ followed by base64 of 24 to 64 bytes")
      .refine((s) => {
        try {
          const n = secretKey(s).length;
          return n >= 24 && n <= 64;
        } catch {
          return false;
        }
      }, "whsec_ followed by base64 of 24 to 64 bytes")
      .optional()
      .openapi({ description: "Standard Webhooks secret; generated when omitted" }),
    description: ShortText.nullable().optional(),
  })
  .openapi("WebhookInput");

const WebhookSchema = z
  .object({
    id: z.string(),
    url: z.string(),
    event_types: z.array(z.enum(ALERT_TYPES)),
    description: z.string().nullable(),
    created_at: z.string(),
    deleted_at: z.string().nullable(),
  })
  .openapi("Webhook");

const DeliverySchema = z
  .object({
    id: z.string().openapi({ description: "The webhook-id header; the same on every retry" }),
    alert_id: z.string(),
    event_type: z.string(),
    status: z.enum(["pending", "retrying", "delivered", "failed", "cancelled"]),
    attempts: z.number().int(),
    last_status_code: z.number().int().nullable(),
    last_error: z.string().nullable(),
    created_at: z.string(),
    updated_at: z.string(),
    delivered_at: z.string().nullable(),
    attempt_log: z.array(
      z.object({
        attempt: z.number().int(),
        status_code: z.number().int().nullable(),
        error: z.string().nullable(),
        duration_ms: z.number().int(),
        at: z.string(),
      }),
    ),
  })
  .openapi("WebhookDelivery");

const IdParam = z.object({ id: Id });
const DeliveriesQuery = z.strictObject({
  limit: Limit(200, 50),
});

export const webhooks = resource();

route(
  webhooks,
  {
    method: "post",
    path: "/v1/webhooks",
    summary: "Register an endpoint for alert types; the signing secret is shown once",
    request: { body: { content: { "application/json": { schema: WebhookInput } }, required: true } },
    responses: { 201: json(WebhookSchema.extend({ secret: z.string() }), "Created"), ...problems(400, 401, 403) },
  },
  async (c) => {
    requireRole(c, ["admin"]);
    requireUnscoped(c);
    const input = validBody(c, WebhookInput);
    const secret = input.secret ?? generateSecret();
    const row = await createWebhook(c.env.DB, {
      url: input.url,
      eventTypes: input.event_types,
      secret,
      description: input.description ?? null,
    });
    // The view, never the row: the secret is shown once, to the caller, and is not audited.
    await recordChange(c, { action: "webhook.created", target: row.id, before: null, after: webhookView(row) });
    return c.json({ ...webhookView(row), secret }, 201);
  },
);

route(
  webhooks,
  {
    method: "get",
    path: "/v1/webhooks",
    summary: "Registered endpoints (not deleted)",
    responses: { 200: json(z.object({ webhooks: z.array(WebhookSchema) })), ...problems(401, 403) },
  },
  async (c) => {
    requireRole(c, ["admin"]);
    requireUnscoped(c);
    return c.json({ webhooks: (await listWebhooks(c.env.DB)).map(webhookView) });
  },
);

route(
  webhooks,
  {
    method: "delete",
    path: "/v1/webhooks/{id}",
    summary: "Delete an endpoint: nothing more is delivered to it",
    request: { params: IdParam },
    responses: { 200: json(WebhookSchema), ...problems(400, 401, 403, 404) },
  },
  async (c) => {
    requireRole(c, ["admin"]);
    requireUnscoped(c);
    const id = pathId(c, "id");
    const before = await getWebhook(c.env.DB, id);
    const row = await deleteWebhook(c.env.DB, id);
    if (!row) throw new ApiError("not_found", `webhook ${id} does not exist`);
    // Deleting again changes nothing and is not recorded; `once` keeps two racing deletes to one row.
    if (before !== null && before.deleted_at_ms === null) {
      await recordChange(c, {
        action: "webhook.deleted",
        target: id,
        before: webhookView(before),
        after: webhookView(row),
        once: true,
      });
    }
    return c.json(webhookView(row));
  },
);

route(
  webhooks,
  {
    method: "get",
    path: "/v1/webhooks/{id}/deliveries",
    summary: "The endpoint's newest deliveries, each with every attempt",
    request: {
      params: IdParam,
      query: DeliveriesQuery,
    },
    responses: { 200: json(z.object({ deliveries: z.array(DeliverySchema) })), ...problems(400, 401, 403, 404) },
  },
  async (c) => {
    requireRole(c, ["admin"]);
    requireUnscoped(c);
    const id = pathId(c, "id");
    const q = validQuery(c, DeliveriesQuery);
    if (!(await getWebhook(c.env.DB, id))) throw new ApiError("not_found", `webhook ${id} does not exist`);
    return c.json({ deliveries: await listDeliveries(c.env.DB, id, q.limit) });
  },
);
