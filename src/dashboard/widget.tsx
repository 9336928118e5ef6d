/**
 * The embeddable balance widget, /app/accounts/{id}/widget: a small page a
 * customer's own product can show in a frame, with the available balance per
 * unit and the next expiry.
 *
 * Opened with the session cookie, or with `?token=<widget token>` (typ
 * dashboard-widget+jwt, minted with each magic link: the `widget_url` of
 * POST /v1/accounts/{id}/dashboard-links; for the account or an ancestor of
 * it). A magic link is NOT accepted here: whoever sees a widget's URL (the
 * framing product, its logs) must not get the link's full read-only session.
 * The widget token opens this page only: /app/login and the API refuse it.
 * It sets no cookie: a framed page is a third-party context where a
 * SameSite=Strict cookie would not come back anyway. It acts, inside the
 * Worker only, as a one-request viewer session that never leaves it.
 *
 * Framing: `frame-ancestors *` for this route only (every other /app page
 * has 'none'). The widget has no form, no link that acts and no script, so a
 * page framing it can neither read it nor make it do anything (clickjacking
 * has nothing to click); which sites may show a customer's balance is
 * decided by who holds the link.
 */
import type { Context, Hono } from "hono";
import { raw } from "hono/html";
import type { AppEnv } from "../api/context";
import { accountParam, customerAuth } from "./customer";
import { type Balance, must, unitsOf } from "./customer-data";
import { formatDate, Num, PageError, When } from "./layout";
import { mintCustomerSession, TokenRefused, verifyWidgetToken } from "./tokens";

/** The widget's CSP: the dashboard's, except that any site may frame it. */
export const WIDGET_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; frame-ancestors *; base-uri 'none'";

const CSS = `body{margin:0;font-family:system-ui,sans-serif;color:#1a1a1a;background:#fff}
.w{padding:.5rem .75rem}.u{display:flex;justify-content:space-between;gap:1rem;font-variant-numeric:tabular-nums}
.big{font-weight:700;font-size:1.25rem}.muted{color:#4a4a4a;font-size:.85rem}`;

/** The bearer to read with: the cookie's session, or a one-request session from the widget token in `?token=`. */
async function widgetBearer(c: Context<AppEnv>): Promise<string> {
  const widgetToken = c.req.query("token");
  if (widgetToken === undefined) return (await customerAuth(c)).token;
  try {
    const verified = await verifyWidgetToken(c.env, widgetToken);
    return (await mintCustomerSession(c.env, verified)).token;
  } catch (e) {
    if (e instanceof TokenRefused) throw new PageError(401, e.message);
    throw e;
  }
}

export function widgetRoutes(app: Hono<AppEnv>): void {
  app.get("/accounts/:id/widget", async (c) => {
    c.header("content-security-policy", WIDGET_CSP);
    // Its URL holds the widget token: never sent on, not even to this origin.
    c.header("referrer-policy", "no-referrer");
    const token = await widgetBearer(c);
    const accountId = accountParam(c);
    const base = `/v1/accounts/${encodeURIComponent(accountId)}`;
    await must(c, token, base);
    const units = await unitsOf(c, token, accountId);
    const balances = await Promise.all(units.map((u) => must<Balance>(c, token, `${base}/balance?unit=${u}`)));
    const next = balances
      .flatMap((b) => b.expiring.map((x) => ({ ...x, unit: b.unit })))
      .sort((a, b) => Date.parse(a.expires_at) - Date.parse(b.expires_at))[0];
    return c.html(
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <meta name="viewport" content="width=device-width, initial-scale=1" />
          <meta name="referrer" content="no-referrer" />
          <title>Balance</title>
          <style>{raw(CSS)}</style>
        </head>
        <body>
          <section class="w" aria-label="Credit balance">
            {balances.map((b) => (
              <div class="u">
                <span>{b.unit}</span>
                <span class="big">
                  <Num field={`widget.${b.unit}.available`} value={b.available} />
                </span>
              </div>
            ))}
            <p class="muted">
              {next ? (
                <>
                  Next expiry: <Num field="widget.next_expiry.amount" value={next.amount} /> {next.unit} on{" "}
                  <When field="widget.next_expiry.expires_at" value={next.expires_at} />
                </>
              ) : (
                "Nothing expires."
              )}
            </p>
            <p class="muted">{`As of ${formatDate(Date.now())}`}</p>
          </section>
        </body>
      </html>,
    );
  });
}
