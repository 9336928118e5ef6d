/**
 * POST /v1/accounts/{account_id}/dashboard-links: a short-lived, signed,
 * read-only magic link to the customer's dashboard for one account (and its
 * descendants), src/dashboard/tokens.ts, and the URL of the account's balance
 * widget with its own balance-only token (same expiry). Audited as
 * `dashboard_link.created` (the row names both tokens' ids and the expiry,
 * never a token). The URLs are on the origin the request came to.
 */
import { z } from "@hono/zod-openapi";
import {
  LINK_TTL_DEFAULT_SECONDS,
  LINK_TTL_MAX_SECONDS,
  LINK_TTL_MIN_SECONDS,
  mintLink,
  mintWidgetToken,
} from "../dashboard/tokens";
import { recordChange } from "./audit";
import { pathId, requireRole, validBody } from "./context";
import { resource, route } from "./route";
import { AccountIdParam, json, problems } from "./schemas";
import { requireAccountExists } from "./scope";

/** Who may hand a customer a dashboard link. */
export const DASHBOARD_LINK_ISSUERS = ["admin", "finance", "support"] as const;

export const DashboardLinkInputSchema = z
  .strictObject({
    ttl_seconds: z
      .number()
      .int()
      .min(LINK_TTL_MIN_SECONDS)
      .max(LINK_TTL_MAX_SECONDS)
      .default(LINK_TTL_DEFAULT_SECONDS)
      .openapi({ description: `How long the link works: ${LINK_TTL_MIN_SECONDS}..${LINK_TTL_MAX_SECONDS} s` }),
  })
  .openapi("DashboardLinkInput");

export const DashboardLinkSchema = z
  .object({
    url: z.string().openapi({
      description: "<origin>/app/login?token=<signed link>: the customer opens it for a read-only session",
    }),
    widget_url: z.string().openapi({
      description:
        "<origin>/app/accounts/{account_id}/widget?token=<widget token>: the embeddable balance widget, for a " +
        "frame in the customer's own product; its token (typ dashboard-widget+jwt) opens the widget only, " +
        "never a session or the API",
    }),
    expires_at: z.string().openapi({ description: "When both the link and the widget token stop working" }),
  })
  .openapi("DashboardLink");

export const dashboardLinks = resource();

route(
  dashboardLinks,
  {
    method: "post",
    path: "/v1/accounts/{account_id}/dashboard-links",
    summary: "A short-lived, read-only magic link to the customer dashboard of an account (and its descendants)",
    description:
      "The link is a compact JWS (ES256, the receipt keys, typ dashboard-link+jwt). Opening it sets a session " +
      "cookie scoped to the account's tree, with a viewer's rights. widget_url opens the balance widget only " +
      "(typ dashboard-widget+jwt). Both expire at expires_at. URLs are on the request's origin. Body optional.",
    request: {
      params: AccountIdParam,
      body: { content: { "application/json": { schema: DashboardLinkInputSchema } }, required: false },
    },
    responses: { 201: json(DashboardLinkSchema, "Created"), ...problems(400, 401, 403, 404, 413, 415) },
  },
  async (c) => {
    requireRole(c, DASHBOARD_LINK_ISSUERS);
    const accountId = pathId(c, "account_id");
    const input = validBody(c, DashboardLinkInputSchema);
    await requireAccountExists(c, accountId);
    const { token, jti, expiresAtS } = await mintLink(c.env, accountId, input.ttl_seconds);
    const widget = await mintWidgetToken(c.env, accountId, expiresAtS);
    const expiresAt = new Date(expiresAtS * 1000).toISOString();
    await recordChange(c, {
      action: "dashboard_link.created",
      target: accountId,
      before: null,
      after: { link_id: jti, widget_id: widget.jti, account_id: accountId, expires_at: expiresAt },
    });
    const origin = new URL(c.req.url).origin;
    const url = `${origin}/app/login?token=${token}`;
    const widgetUrl = `${origin}/app/accounts/${encodeURIComponent(accountId)}/widget?token=${widget.token}`;
    return c.json({ url, widget_url: widgetUrl, expires_at: expiresAt }, 201);
  },
);
