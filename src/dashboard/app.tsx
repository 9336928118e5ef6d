/**
 * The dashboard: a Hono sub-app mounted at /app (src/api/app.ts), outside
 * /v1 and its auth. Every page answers HTML, with the security headers below;
 * data comes from the /v1 API in process (src/dashboard/api-client.ts).
 *
 * - GET /app/login?token=<magic link> → sets cg_session, 200 with a page that
 *   moves on to the account (meta refresh + a Continue link).
 * - POST /app/logout → clears it (CSRF-checked).
 * - /app/accounts/{id}… the customer's view (src/dashboard/customer*.tsx) and
 *   widget (src/dashboard/widget.tsx); /app/admin… the operator's (admin*.tsx).
 */

import type { Context, MiddlewareHandler } from "hono";
import { Hono } from "hono";
import type { AppEnv } from "../api/context";
import { log } from "../log";
import { adminRoutes } from "./admin";
import {
  clearSessionCookie,
  readCookie,
  requireSameOrigin,
  SESSION_COOKIE,
  setSessionCookie,
  verifiedForm,
} from "./csrf";
import { customerRoutes } from "./customer";
import { DASHBOARD_REFERRER_POLICY, ErrorNotice, Layout, PageError } from "./layout";
import { mintCustomerSession, TokenRefused, verifyCustomerSession, verifyLink } from "./tokens";
import { widgetRoutes } from "./widget";

/**
 * Every /app response's CSP, unless the route set its own (the widget, which
 * may be framed): no scripts, no requests anywhere, inline styles only.
 */
export const DASHBOARD_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const securityHeaders: MiddlewareHandler<AppEnv> = async (c, next) => {
  await next();
  const h = c.res.headers;
  if (!h.has("content-security-policy")) h.set("content-security-policy", DASHBOARD_CSP);
  h.set("x-content-type-options", "nosniff");
  if (!h.has("referrer-policy")) h.set("referrer-policy", DASHBOARD_REFERRER_POLICY);
  h.set("cache-control", "no-store");
};

/** A page that only says what went wrong, with the status it went wrong with. */
export function errorPage(
  c: Context<AppEnv>,
  status: PageError["status"],
  sentence: string,
): Response | Promise<Response> {
  const title = status === 404 ? "Not found" : status === 401 ? "Not signed in" : "Something went wrong";
  return c.html(
    <Layout title={title}>
      <ErrorNotice message={sentence} />
    </Layout>,
    status,
  );
}

export const dashboard = new Hono<AppEnv>();
dashboard.use("*", securityHeaders);
dashboard.onError((e, c) => {
  if (e instanceof PageError) {
    c.set("errorCode", `page_${e.status}`);
    return errorPage(c, e.status, e.sentence);
  }
  log({
    event: "error",
    request_id: c.get("requestId"),
    path: c.req.path,
    code: "internal_error",
    error: e.message,
    stack: e.stack,
  });
  c.set("errorCode", "internal_error");
  return errorPage(
    c,
    500,
    `Something went wrong on our side. Please try again; if it keeps happening, quote reference ${c.get("requestId")}.`,
  );
});

dashboard.get("/", (c) =>
  c.html(
    <Layout title="Credit Gate dashboard">
      <p>Open the link you were sent to see your account, or sign in to the operator view.</p>
      <p>
        <a href="/app/admin">Operator sign-in</a>
      </p>
    </Layout>,
  ),
);

dashboard.get("/login", async (c) => {
  const token = c.req.query("token");
  if (!token) throw new PageError(401, "This link is incomplete. Open the whole link you were sent.");
  let link: Awaited<ReturnType<typeof verifyLink>>;
  try {
    link = await verifyLink(c.env, token);
  } catch (e) {
    if (e instanceof TokenRefused) throw new PageError(401, e.message);
    throw e;
  }
  const { token: session, session: claims } = await mintCustomerSession(c.env, link);
  setSessionCookie(c, SESSION_COOKIE, session, claims.expiresAtS - Math.floor(Date.now() / 1000));
  log({ event: "dashboard.session", request_id: c.get("requestId"), account_id: link.accountId, session: claims.jti });
  // Not a redirect: a link opened from another site (email, chat) is a cross-site
  // navigation, and a browser does not send a SameSite=Strict cookie on its
  // redirect hops. The refresh below is a new navigation started by this
  // same-origin page, so the cookie just set goes with it.
  const target = `/app/accounts/${encodeURIComponent(link.accountId)}`;
  c.header("referrer-policy", "no-referrer");
  return c.html(
    <Layout
      title="Opening your account"
      referrer="no-referrer"
      head={<meta http-equiv="refresh" content={`0;url=${target}`} />}
    >
      <p role="status">You are signed in.</p>
      <p>
        <a href={target} data-link="continue">
          Continue to your account
        </a>
      </p>
    </Layout>,
  );
});

dashboard.post("/logout", async (c) => {
  requireSameOrigin(c);
  const cookie = readCookie(c, SESSION_COOKIE);
  let csrf: string | null = null;
  if (cookie) {
    try {
      csrf = (await verifyCustomerSession(c.env, cookie)).csrf;
    } catch (e) {
      if (!(e instanceof TokenRefused)) throw e;
    }
  }
  // A live session needs its own token even to sign out: a forged post may not end it.
  if (csrf !== null) await verifiedForm(c, csrf);
  clearSessionCookie(c, SESSION_COOKIE);
  return c.html(
    <Layout title="Signed out">
      <p role="status">You are signed out. Open a new link to see your account again.</p>
    </Layout>,
  );
});

customerRoutes(dashboard);
widgetRoutes(dashboard);

// ── operator view (helper O): register the /app/admin routes on the next line ──
adminRoutes(dashboard);
// ── end of operator view ──

dashboard.all("*", (c) => errorPage(c, 404, "There is no page at this address."));
