/**
 * The operator view, /app/admin: sign-in with an API key (or the bootstrap
 * ADMIN_TOKEN) for an operator session cookie, and every page behind it. Each
 * page reads and acts through the /v1 API in process with the session as its
 * bearer, so the API's roles, limits, scope and actor apply unchanged
 * (src/dashboard/api-client.ts). What a role sees: admin-rules.tsx.
 */
import type { Hono } from "hono";
import type { AppEnv } from "../api/context";
import { findApiKey, KeyStoreUnavailable } from "../db/api-keys";
import { log } from "../log";
import { accountRoutes } from "./admin-account";
import { actionRoutes } from "./admin-actions";
import { approvalRoutes } from "./admin-approvals";
import { bulkRoutes } from "./admin-bulk";
import { campaignRoutes } from "./admin-campaigns";
import { type AdminContext, adminPage, api, operatorFrom, operatorOf, type Page, setOperator } from "./admin-frame";
import { opsRoutes } from "./admin-ops";
import { reportRoutes } from "./admin-reports";
import { OPERATOR_ROLES } from "./admin-rules";
import { usableId } from "./api-client";
import {
  clearSessionCookie,
  OPERATOR_COOKIE,
  readCookie,
  requireSameOrigin,
  setSessionCookie,
  verifiedForm,
} from "./csrf";
import { ErrorNotice, Layout, Num, PageError, When } from "./layout";
import {
  ADMIN_TOKEN_SUB,
  mintOperatorSession,
  OPERATOR_SESSION_SECONDS,
  operatorCaller,
  TokenRefused,
  verifyOperatorSession,
} from "./tokens";

const LOGIN = "/app/admin/login";

/** The recent accounts the home page lists (the first page of GET /v1/accounts). */
export const ADMIN_ACCOUNTS_SHOWN = 20;

/** Registers every /app/admin route on the dashboard sub-app (mounted at /app). */
export function adminRoutes(app: Hono<AppEnv>): void {
  app.get("/admin/login", (c) => loginPage(c, null, 200));
  app.post("/admin/login", signIn);
  app.use("/admin", guard);
  app.use("/admin/*", guard);
  app.post("/admin/logout", async (c) => {
    await verifiedForm(c, operatorOf(c).session.csrf);
    clearSessionCookie(c, OPERATOR_COOKIE);
    return c.redirect(LOGIN, 303);
  });
  app.get("/admin", home);
  app.get("/admin/find", (c) => {
    const id = (c.req.query("account_id") ?? "").trim();
    if (!usableId(id)) {
      return homeWith(c, "An account id is 1 to 128 letters, digits or . _ : - characters, not only dots.", 400);
    }
    return c.redirect(`/app/admin/accounts/${encodeURIComponent(id)}`, 303);
  });
  accountRoutes(app);
  actionRoutes(app);
  bulkRoutes(app);
  approvalRoutes(app);
  campaignRoutes(app);
  opsRoutes(app);
  reportRoutes(app);
}

/**
 * Every /app/admin page but the sign-in: a POST from another site → 403; then a
 * valid operator session whose key still stands, else 303 to the sign-in.
 */
async function guard(c: AdminContext, next: () => Promise<void>): Promise<Response | undefined> {
  if (c.req.path === LOGIN) {
    await next();
    return undefined;
  }
  // A cross-site form post is refused as such (403, a sentence) before the
  // cookie is looked at: a SameSite=Strict cookie is not sent on it, so it
  // would otherwise be sent to the sign-in. Every action checks again (with its csrf field).
  if (c.req.method !== "GET" && c.req.method !== "HEAD") requireSameOrigin(c);
  const token = readCookie(c, OPERATOR_COOKIE);
  if (!token) return c.redirect(LOGIN, 303);
  let session: Awaited<ReturnType<typeof verifyOperatorSession>>;
  try {
    session = await verifyOperatorSession(c.env, token);
  } catch (e) {
    if (!(e instanceof TokenRefused)) throw e;
    clearSessionCookie(c, OPERATOR_COOKIE);
    return c.redirect(LOGIN, 303);
  }
  const caller = await keyCheck(() => operatorCaller(c.env, session));
  // Revoked, deleted, or its role changed: the session ends with it.
  if (!caller || !OPERATOR_ROLES.includes(caller.role)) {
    clearSessionCookie(c, OPERATOR_COOKIE);
    return c.redirect(`${LOGIN}?ended=1`, 303);
  }
  setOperator(c, operatorFrom(token, session, caller));
  await next();
  return undefined;
}

async function keyCheck<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof KeyStoreUnavailable) {
      throw new PageError(503, "API keys cannot be checked right now. Please try again in a few seconds.");
    }
    throw e;
  }
}

function loginPage(c: AdminContext, error: string | null, status: 200 | 401 | 403): Page {
  const ended = c.req.query("ended") === "1" && error === null;
  return c.html(
    <Layout title="Operator sign-in">
      {error ? <ErrorNotice message={error} /> : null}
      {ended ? (
        <div class="notice" role="status">
          Your session has ended: the key was revoked or changed. Sign in again with a valid key.
        </div>
      ) : null}
      <form method="post" action={LOGIN} data-form="admin-login">
        <p>
          <label for="api_key">API key</label>
          <input id="api_key" name="api_key" type="password" autocomplete="off" required maxlength={256} size={50} />
        </p>
        <p class="muted">
          An admin, finance, support, marketing or viewer key. It is checked once and not stored here.
        </p>
        <button type="submit">Sign in</button>
      </form>
    </Layout>,
    status,
  );
}

async function equalStrings(a: string, b: string): Promise<boolean> {
  const enc = new TextEncoder();
  const [ha, hb] = await Promise.all([
    crypto.subtle.digest("SHA-256", enc.encode(a)),
    crypto.subtle.digest("SHA-256", enc.encode(b)),
  ]);
  return crypto.subtle.timingSafeEqual(ha, hb);
}

/** The sign-in form's body is at most this many bytes (a key is 46 characters). */
export const LOGIN_FORM_MAX_BYTES = 4096;

/** The `api_key` of a posted sign-in form, read up to LOGIN_FORM_MAX_BYTES; "" when absent. */
async function postedLogin(c: AdminContext): Promise<string> {
  if (Number(c.req.header("content-length") ?? "0") > LOGIN_FORM_MAX_BYTES) {
    throw new PageError(413, "This form is too large.");
  }
  const reader = c.req.raw.body?.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const step = reader ? await reader.read() : { done: true as const, value: undefined };
    if (step.done) break;
    size += step.value.byteLength;
    if (size > LOGIN_FORM_MAX_BYTES) {
      await reader?.cancel();
      throw new PageError(413, "This form is too large.");
    }
    chunks.push(step.value);
  }
  const type = c.req.header("content-type") ?? "application/x-www-form-urlencoded";
  try {
    const form = await new Response(new Blob(chunks), { headers: { "content-type": type } }).formData();
    const key = form.get("api_key");
    return typeof key === "string" ? key.trim() : "";
  } catch {
    throw new PageError(400, "The form could not be read. Reload the page and try again.");
  }
}

/** POST /app/admin/login: the key → an operator session cookie, or the form again with a sentence. */
async function signIn(c: AdminContext): Promise<Response> {
  requireSameOrigin(c);
  const key = await postedLogin(c);
  const admin = c.env.ADMIN_TOKEN;
  let keyId: string;
  let role: (typeof OPERATOR_ROLES)[number] | "gateway";
  if (key !== "" && admin && (await equalStrings(key, admin))) {
    keyId = ADMIN_TOKEN_SUB;
    role = "admin";
  } else {
    const found = key === "" ? null : await keyCheck(() => findApiKey(c.env.DB, key));
    if (!found) return loginPage(c, "That API key is not valid, or it has been revoked.", 401);
    keyId = found.id;
    role = found.role;
  }
  if (!OPERATOR_ROLES.includes(role)) {
    return loginPage(c, "A gateway key cannot sign in to the operator view: it may read balances only.", 403);
  }
  const { token, session } = await mintOperatorSession(c.env, keyId, role);
  setSessionCookie(c, OPERATOR_COOKIE, token, OPERATOR_SESSION_SECONDS);
  log({
    event: "dashboard.operator_session",
    request_id: c.get("requestId"),
    key_id: keyId,
    role,
    session: session.jti,
  });
  return c.redirect("/app/admin", 303);
}

interface AccountRow {
  account_id: string;
  name: string | null;
  created_at: string;
}

const home = (c: AdminContext): Promise<Response> => homeWith(c, null, 200);

async function homeWith(c: AdminContext, error: string | null, status: 200 | 400): Promise<Response> {
  const op = operatorOf(c);
  const list = await api<{ accounts: AccountRow[] }>(c, "GET", `/v1/accounts?limit=${ADMIN_ACCOUNTS_SHOWN}`);
  const limit = op.caller.maxGrantAmount;
  return adminPage(
    c,
    "Operator view",
    <>
      <section aria-labelledby="key-h">
        <h2 id="key-h">Your key</h2>
        <div class="kv">
          <span>Key</span>
          <span data-field="key.id">{op.caller.keyId}</span>
          <span>Role</span>
          <span data-field="key.role">{op.caller.role}</span>
          <span>Grant limit</span>
          {limit === null ? (
            <span data-field="key.max_grant_amount" data-value="">
              {op.can.grantTypes.length === 0 ? "may not grant" : "no limit"}
            </span>
          ) : (
            <Num field="key.max_grant_amount" value={limit} />
          )}
          <span>May grant</span>
          <span data-field="key.grant_types">{op.can.grantTypes.join(", ") || "nothing"}</span>
          {op.caller.accountScope ? (
            <>
              <span>Limited to</span>
              <span data-field="key.account_scope">{op.caller.accountScope} and its descendants</span>
            </>
          ) : null}
        </div>
      </section>
      <section aria-labelledby="find-h">
        <h2 id="find-h">Find an account</h2>
        <form method="get" action="/app/admin/find" data-form="find-account" class="filters">
          <p>
            <label for="account_id">Account id</label>
            <input id="account_id" name="account_id" required maxlength={128} pattern="[A-Za-z0-9._:\-]{1,128}" />
          </p>
          <button type="submit">Open</button>
        </form>
      </section>
      <section aria-labelledby="recent-h">
        <h2 id="recent-h">Accounts</h2>
        {list.ok ? (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th>Account</th>
                  <th>Name</th>
                  <th>Created</th>
                </tr>
              </thead>
              <tbody>
                {list.body.accounts.map((a) => (
                  <tr>
                    <td>
                      <a href={`/app/admin/accounts/${encodeURIComponent(a.account_id)}`}>{a.account_id}</a>
                    </td>
                    <td>{a.name ?? ""}</td>
                    <td>
                      <When field={`account.${a.account_id}.created_at`} value={a.created_at} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : (
          <p class="muted">{list.sentence}</p>
        )}
      </section>
    </>,
    { status, error },
  );
}
