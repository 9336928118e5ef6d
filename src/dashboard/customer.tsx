/**
 * The customer's view, /app/accounts/{id}: balances by unit and type, what
 * expires when, usage per day and by meter, the transaction log with filters
 * and pages, pending and awaiting grants, allowances, departments, and the
 * CSV and signed statement downloads. Read-only: the session is a viewer
 * scoped to its account's tree, so every other account answers 404.
 */
import type { Context, Hono } from "hono";
import type { FC } from "hono/jsx";
import type { AppEnv } from "../api/context";
import { UNIT_PATTERN } from "../ledger/ids";
import { apiFetch, sentenceFor, usableId } from "./api-client";
import { CSRF_FIELD, readCookie, SESSION_COOKIE } from "./csrf";
import {
  type Balance,
  CHILDREN_SHOWN,
  dailyUsage,
  dayStart,
  type LogFilter,
  logPage,
  meterUsage,
  must,
  read,
  seekSeq,
  USAGE_DAYS,
  unitsOf,
} from "./customer-data";
import { DetailPage, Downloads, type RefDetail, Transactions } from "./customer-log";
import {
  accountHref,
  BalanceCard,
  type Child,
  Departments,
  ExpiringTable,
  enc,
  MeterTable,
  type Recurring,
  UnitSelect,
  Upcoming,
  UsageChart,
} from "./customer-parts";
import { dayMs, ErrorNotice, Layout, PageError } from "./layout";
import { type CustomerSession, TokenRefused, verifyCustomerSession } from "./tokens";

const DAY_MS = 86_400_000;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const KIND = /^[a-z][a-z._]{0,31}$/;
/** The statement's `to` is kept this far behind the Worker's clock, so the account's clock never sees it ahead. */
const STATEMENT_TO_MARGIN_MS = 2000;

export interface CustomerAuth {
  token: string;
  session: CustomerSession;
}

/** The customer session from the cookie, or a 401 page with a sentence. */
export async function customerAuth(c: Context<AppEnv>): Promise<CustomerAuth> {
  const token = readCookie(c, SESSION_COOKIE);
  if (!token) throw new PageError(401, "You are not signed in. Open the link you were sent to see your account.");
  try {
    return { token, session: await verifyCustomerSession(c.env, token) };
  } catch (e) {
    if (e instanceof TokenRefused) {
      throw new PageError(401, "Your session has ended. Open a new link to see your account again.");
    }
    throw e;
  }
}

/** The account id of the path, or 404 (an id that breaks the rules names no account). */
export function accountParam(c: Context<AppEnv>): string {
  const id = c.req.param("id") ?? "";
  if (!usableId(id)) throw new PageError(404, sentenceFor("account_not_found", ""));
  return id;
}

const SignOut: FC<{ csrf: string }> = ({ csrf }) => (
  <form method="post" action="/app/logout" class="inline" data-form="logout">
    <input type="hidden" name={CSRF_FIELD} value={csrf} />
    <button type="submit">Sign out</button>
  </form>
);

interface Query {
  unit: string;
  days: number;
  kind?: string;
  logUnit?: string;
  from?: string;
  to?: string;
  afterSeq?: number;
}

function parseQuery(c: Context<AppEnv>): Query {
  const q = c.req.query();
  const bad = (what: string) =>
    new PageError(400, `The ${what} in this address is not valid. Change it and try again.`);
  const unit = q.unit || "credits";
  if (!UNIT_PATTERN.test(unit)) throw bad("unit");
  const days = q.days ? Number(q.days) : 30;
  if (!(USAGE_DAYS as readonly number[]).includes(days)) throw bad("number of days (30 or 90)");
  const out: Query = { unit, days };
  if (q.kind) {
    if (!KIND.test(q.kind)) throw bad("kind");
    out.kind = q.kind;
  }
  if (q.log_unit) {
    if (!UNIT_PATTERN.test(q.log_unit)) throw bad("unit filter");
    out.logUnit = q.log_unit;
  }
  for (const k of ["from", "to"] as const) {
    const v = q[k];
    if (!v) continue;
    if (dayMs(v) === null) throw bad(`${k} date (YYYY-MM-DD)`);
    out[k] = v;
  }
  if (q.after_seq) {
    if (!/^\d{1,15}$/.test(q.after_seq)) throw bad("page");
    out.afterSeq = Number(q.after_seq);
  }
  return out;
}

async function accountPage(c: Context<AppEnv>): Promise<Response> {
  const { token, session } = await customerAuth(c);
  const accountId = accountParam(c);
  const q = parseQuery(c);
  const base = `/v1/accounts/${enc(accountId)}`;
  const account = await must<{ account_id: string; name: string | null; parent_id: string | null }>(c, token, base);
  const nowMs = Date.now();
  const [units, children, recurring] = await Promise.all([
    unitsOf(c, token, accountId),
    read<{ children: Child[]; next_cursor: string | null }>(c, token, `${base}/children?limit=${CHILDREN_SHOWN}`),
    read<{ recurring_grants: Recurring[] }>(c, token, `${base}/recurring-grants`),
  ]);
  const hasChildren = children.ok && children.body.children.length > 0;
  if (!units.includes(q.unit)) units.push(q.unit);
  const balances = await Promise.all(
    units.map((u) => must<Balance>(c, token, `${base}/balance?unit=${u}${hasChildren ? "&rollup=true" : ""}`)),
  );
  const usageFrom = dayStart(nowMs) + DAY_MS - q.days * DAY_MS;
  const logFilter: LogFilter = {
    ...(q.kind ? { kind: q.kind } : {}),
    ...(q.logUnit ? { unit: q.logUnit } : {}),
    ...(q.from ? { fromMs: Date.parse(`${q.from}T00:00:00Z`) } : {}),
    ...(q.to ? { toMs: Date.parse(`${q.to}T00:00:00Z`) + DAY_MS } : {}),
  };
  const startAfter =
    q.afterSeq ?? (logFilter.fromMs !== undefined ? await seekSeq(c, token, accountId, logFilter.fromMs) : 0);
  const [usage, meters, log, childBalances] = await Promise.all([
    dailyUsage(c, token, accountId, q.unit, q.days, nowMs),
    meterUsage(c, token, accountId, q.unit, usageFrom),
    logPage(c, token, accountId, startAfter, logFilter),
    hasChildren && children.ok
      ? Promise.all(
          children.body.children.map((ch) =>
            read<Balance>(c, token, `/v1/accounts/${enc(ch.account_id)}/balance?unit=${q.unit}`),
          ),
        )
      : Promise.resolve([]),
  ]);
  const expiring = balances
    .flatMap((b) => b.expiring.map((x) => ({ ...x, unit: b.unit })))
    .sort((a, b) => Date.parse(a.expires_at) - Date.parse(b.expires_at) || (a.grant_id < b.grant_id ? -1 : 1));
  const pending = balances.flatMap((b) => b.pending.map((x) => ({ ...x, unit: b.unit })));
  pending.sort((a, b) => Date.parse(a.effective_at) - Date.parse(b.effective_at));
  const awaiting = balances.flatMap((b) => (b.awaiting_payment ?? []).map((x) => ({ ...x, unit: b.unit })));
  const keep = {
    unit: q.unit,
    days: String(q.days),
    kind: q.kind,
    log_unit: q.logUnit,
    from: q.from,
    to: q.to,
  };
  const todayIso = new Date(nowMs).toISOString().slice(0, 10);
  const monthStart = `${todayIso.slice(0, 8)}01`;

  return c.html(
    <Layout
      title={account.name ? `${account.name} (${accountId})` : `Account ${accountId}`}
      nav={<SignOut csrf={session.csrf} />}
    >
      {accountId !== session.accountId ? (
        <p>
          A department of <a href={accountHref(session.accountId)}>{session.accountId}</a>.
        </p>
      ) : null}

      <h2 id="balance">Balance</h2>
      <div class="cards">
        {balances.map((b) => (
          <BalanceCard b={b} />
        ))}
      </div>

      <h2 id="expiry">What expires when</h2>
      <ExpiringTable expiring={expiring} />
      {balances.some((b) => b.expiring_more) ? (
        <p class="muted">Only the first 1,000 expiring grants per unit are listed.</p>
      ) : null}

      <h2 id="usage">Usage</h2>
      <form method="get" action={accountHref(accountId)} class="filters" data-form="usage-days">
        <input type="hidden" name="unit" value={q.unit} />
        <div>
          <label for="days">Period</label>
          <select id="days" name="days">
            {USAGE_DAYS.map((d) => (
              <option value={String(d)} selected={d === q.days}>{`Last ${d} days`}</option>
            ))}
          </select>
        </div>
        <UnitSelect id="unit" name="unit" units={units} selected={q.unit} />
        <button type="submit">Show</button>
      </form>
      {usage.ok ? <UsageChart days={usage.body} unit={q.unit} /> : <ErrorNotice message={usage.sentence} />}
      <h3>By meter</h3>
      <MeterTable unit={q.unit} meters={meters.meters} partial={meters.partial} />

      <h2 id="upcoming">Upcoming and awaiting payment</h2>
      <Upcoming pending={pending} awaiting={awaiting} recurring={recurring} />

      {hasChildren && children.ok ? <Departments unit={q.unit} list={children.body} balances={childBalances} /> : null}

      <h2 id="transactions">Transactions</h2>
      <Transactions accountId={accountId} q={q} units={units} log={log} startAfter={startAfter} keep={keep} />

      <Downloads accountId={accountId} unit={q.unit} units={units} monthStart={monthStart} todayIso={todayIso} />
    </Layout>,
  );
}

/** Serves a /v1 download as the API serves it (same status, content type, body), or an error page. */
async function proxy(c: Context<AppEnv>, token: string, path: string, filename: string): Promise<Response> {
  const res = await apiFetch(c, token, "GET", path);
  if (!res.ok) {
    let code = "internal_error";
    let detail = "";
    try {
      const p = (await res.json()) as { code?: string; detail?: string };
      code = p.code ?? code;
      detail = p.detail ?? "";
    } catch {
      // not JSON: the generic sentence
    }
    const status = ([400, 401, 403, 404, 409, 429, 503] as const).find((s) => s === res.status) ?? 502;
    throw new PageError(status, sentenceFor(code, detail, c.get("requestId")));
  }
  const headers = new Headers();
  for (const h of ["content-type", "x-next-after-seq"]) {
    const v = res.headers.get(h);
    if (v !== null) headers.set(h, v);
  }
  headers.set("content-disposition", `attachment; filename="${filename}"`);
  return new Response(res.body, { status: res.status, headers });
}

/**
 * A date field (YYYY-MM-DD) as the start of that UTC day (a day that does not
 * exist: 400 with a sentence); anything else passes to the API as sent.
 */
function dayOr(v: string, plusDays: number, what: string): string {
  if (!DATE.test(v)) return v;
  const ms = dayMs(v);
  if (ms === null) {
    throw new PageError(400, `The ${what} date ${v} is not a day of the calendar. Choose another and try again.`);
  }
  return new Date(ms + plusDays * DAY_MS).toISOString();
}

const safeName = (id: string): string => id.replace(/[^A-Za-z0-9._-]/g, "_");

export function customerRoutes(app: Hono<AppEnv>): void {
  app.get("/accounts/:id", accountPage);

  app.get("/accounts/:id/ledger.csv", async (c) => {
    const { token } = await customerAuth(c);
    const accountId = accountParam(c);
    const q = new URLSearchParams({ format: "csv" });
    for (const k of ["after_seq", "limit"]) {
      const v = c.req.query(k);
      if (v !== undefined) q.set(k, v);
    }
    return proxy(c, token, `/v1/accounts/${enc(accountId)}/ledger?${q}`, `ledger-${safeName(accountId)}.csv`);
  });

  app.get("/accounts/:id/statement", async (c) => {
    const { token } = await customerAuth(c);
    const accountId = accountParam(c);
    const from = c.req.query("from") ?? "";
    let to = c.req.query("to") ?? "";
    if (DATE.test(to)) {
      // The last day is included; a window reaching past now ends just before now (a statement is final).
      const end = Date.parse(dayOr(to, 1, "end"));
      const latest = Math.floor((Date.now() - STATEMENT_TO_MARGIN_MS) / 1000) * 1000;
      to = new Date(Math.min(end, latest)).toISOString();
    }
    const q = new URLSearchParams({ from: dayOr(from, 0, "start"), to, unit: c.req.query("unit") || "credits" });
    return proxy(c, token, `/v1/accounts/${enc(accountId)}/statement?${q}`, `statement-${safeName(accountId)}.json`);
  });

  for (const kind of ["debit", "invoice"] as const) {
    app.get(`/accounts/:id/${kind}s/:ref`, async (c) => {
      const { token, session } = await customerAuth(c);
      const accountId = accountParam(c);
      const ref = c.req.param("ref") ?? "";
      if (!usableId(ref)) throw new PageError(404, `There is no such ${kind} on this account.`);
      const body = await must<RefDetail>(c, token, `/v1/accounts/${enc(accountId)}/${kind}s/${enc(ref)}`);
      return c.html(
        <Layout title={`${kind === "debit" ? "Debit" : "Invoice"} ${ref}`} nav={<SignOut csrf={session.csrf} />}>
          <DetailPage accountId={accountId} kind={kind} id={ref} body={body} />
        </Layout>,
      );
    });
  }
}
