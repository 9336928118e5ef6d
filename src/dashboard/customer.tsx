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
  type DayUsage,
  dailyUsage,
  dayStart,
  type Entry,
  LOG_PAGE_SIZE,
  LOG_SCAN_MAX_ENTRIES,
  type LogFilter,
  logPage,
  meterUsage,
  must,
  read,
  seekSeq,
  USAGE_DAYS,
  USAGE_SCAN_MAX_ENTRIES,
  unitsOf,
} from "./customer-data";
import { dayMs, ErrorNotice, formatAmount, Layout, Num, PageError, When } from "./layout";
import { type CustomerSession, TokenRefused, verifyCustomerSession } from "./tokens";

const TYPES = ["promotional", "compensatory", "purchased"] as const;
const DAY_MS = 86_400_000;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const KIND = /^[a-z][a-z._]{0,31}$/;
/**
 * Fields of a debit or invoice the customer is not shown: `actor` names the
 * operator's API key (an internal id).
 */
export const OPERATOR_ONLY_FIELDS: readonly string[] = ["actor"];

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

const enc = encodeURIComponent;
const accountHref = (id: string, q: Record<string, string | undefined> = {}): string => {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== "") params.set(k, v);
  const s = params.toString();
  return `/app/accounts/${enc(id)}${s ? `?${s}` : ""}`;
};

const SignOut: FC<{ csrf: string }> = ({ csrf }) => (
  <form method="post" action="/app/logout" class="inline" data-form="logout">
    <input type="hidden" name={CSRF_FIELD} value={csrf} />
    <button type="submit">Sign out</button>
  </form>
);

const BalanceCard: FC<{ b: Balance }> = ({ b }) => (
  <section class="card" aria-label={`Balance in ${b.unit}`}>
    <div class="muted">{b.unit} available</div>
    <div class="big">
      <Num field={`balance.${b.unit}.available`} value={b.available} />
    </div>
    <div>
      Held: <Num field={`balance.${b.unit}.held`} value={b.held} />
    </div>
    <table>
      <caption class="muted">By type (available + held)</caption>
      <tbody>
        {TYPES.map((t) => (
          <tr>
            <th scope="row">{t}</th>
            <td class="num">
              <Num field={`balance.${b.unit}.by_type.${t}`} value={b.by_type[t] ?? 0} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
    {b.rollup ? (
      <p>
        With departments: <Num field={`rollup.${b.unit}.available`} value={b.rollup.available} /> available,{" "}
        <Num field={`rollup.${b.unit}.held`} value={b.rollup.held} /> held over{" "}
        <Num field={`rollup.${b.unit}.accounts`} value={b.rollup.accounts} /> accounts.
      </p>
    ) : null}
  </section>
);

/** An inline SVG bar chart of usage per day; the numbers are in the table beside it. */
const UsageChart: FC<{ days: DayUsage[]; unit: string }> = ({ days, unit }) => {
  const w = 600;
  const h = 160;
  const max = Math.max(1, ...days.map((d) => d.consumed));
  const bw = w / Math.max(1, days.length);
  const total = days.reduce((s, d) => s + d.consumed, 0);
  return (
    <figure>
      <svg
        class="chart"
        viewBox={`0 0 ${w} ${h + 20}`}
        role="img"
        aria-label={`Credits used per day in ${unit}, ${days[0]?.day ?? ""} to ${days.at(-1)?.day ?? ""}: ${formatAmount(total)} in all`}
      >
        <line x1="0" y1={String(h)} x2={String(w)} y2={String(h)} stroke="#4a4a4a" stroke-width="1" />
        {days.map((d, i) => {
          const bh = d.consumed > 0 ? Math.max(1, Math.round((d.consumed / max) * (h - 10))) : 0;
          return (
            <rect
              class="bar"
              x={(i * bw + bw * 0.1).toFixed(1)}
              y={String(h - bh)}
              width={(bw * 0.8).toFixed(1)}
              height={String(bh)}
            >
              <title>{`${d.day}: ${formatAmount(d.consumed)}`}</title>
            </rect>
          );
        })}
        <text x="0" y={String(h + 16)} font-size="12" fill="#1a1a1a">
          {days[0]?.day ?? ""}
        </text>
        <text x={String(w)} y={String(h + 16)} font-size="12" fill="#1a1a1a" text-anchor="end">
          {days.at(-1)?.day ?? ""}
        </text>
      </svg>
      <figcaption>
        Used in {unit} over these {days.length} days: <Num field="usage.total.consumed" value={total} /> (the largest
        day: {formatAmount(max === 1 && total === 0 ? 0 : max)}).
      </figcaption>
      <details>
        <summary>Usage per day as a table</summary>
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Day (UTC)</th>
                <th scope="col" class="num">
                  Used
                </th>
              </tr>
            </thead>
            <tbody>
              {days.map((d) => (
                <tr>
                  <td>{d.day}</td>
                  <td class="num">
                    <Num field={`usage.${d.day}.consumed`} value={d.consumed} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </details>
    </figure>
  );
};

const RefCell: FC<{ accountId: string; e: Entry }> = ({ accountId, e }) => {
  if (e.ref === null) return <span class="muted">—</span>;
  const base = `/app/accounts/${enc(accountId)}`;
  if (e.kind === "debit") {
    return (
      <a href={`${base}/debits/${enc(e.ref)}`} data-link="debit" data-field={`entry.${e.seq}.ref`}>
        {e.ref}
      </a>
    );
  }
  if (e.kind === "invoice" || e.kind === "invoice.reversal") {
    return (
      <a href={`${base}/invoices/${enc(e.ref)}`} data-link="invoice" data-field={`entry.${e.seq}.ref`}>
        {e.ref}
      </a>
    );
  }
  return <span data-field={`entry.${e.seq}.ref`}>{e.ref}</span>;
};

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

interface Recurring {
  recurring_id: string;
  amount: number;
  unit: string;
  type: string;
  interval: string;
  status: string;
  periods_issued: number;
  next_period_at: string | null;
}

interface Child {
  account_id: string;
  name: string | null;
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
      {expiring.length === 0 ? (
        <p>Nothing you hold has an expiry date.</p>
      ) : (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Expires</th>
                <th scope="col" class="num">
                  Amount
                </th>
                <th scope="col">Unit</th>
                <th scope="col">Grant</th>
              </tr>
            </thead>
            <tbody>
              {expiring.map((x) => (
                <tr>
                  <td>
                    <When field={`expiring.${x.grant_id}.expires_at`} value={x.expires_at} />
                  </td>
                  <td class="num">
                    <Num field={`expiring.${x.grant_id}.amount`} value={x.amount} />
                  </td>
                  <td>{x.unit}</td>
                  <td>{x.grant_id}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
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
        <div>
          <label for="unit">Unit</label>
          <select id="unit" name="unit">
            {units.map((u) => (
              <option value={u} selected={u === q.unit}>
                {u}
              </option>
            ))}
          </select>
        </div>
        <button type="submit">Show</button>
      </form>
      {usage.ok ? <UsageChart days={usage.body} unit={q.unit} /> : <ErrorNotice message={usage.sentence} />}
      <h3>By meter</h3>
      {meters.meters.length === 0 ? (
        <p>No metered use in {q.unit} in this period.</p>
      ) : (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Meter</th>
                <th scope="col" class="num">
                  Quantity
                </th>
                <th scope="col" class="num">
                  Credits used
                </th>
              </tr>
            </thead>
            <tbody>
              {meters.meters.map((m) => (
                <tr>
                  <td>{m.meter}</td>
                  <td class="num">
                    <Num field={`meter.${m.meter}.quantity`} value={m.quantity} />
                  </td>
                  <td class="num">
                    <Num field={`meter.${m.meter}.amount`} value={m.amount} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {meters.partial ? (
        <p class="muted">{`Counted from the first ${formatAmount(USAGE_SCAN_MAX_ENTRIES)} entries of the period only.`}</p>
      ) : null}

      <h2 id="upcoming">Upcoming and awaiting payment</h2>
      <h3>Not yet effective</h3>
      {pending.length === 0 ? (
        <p>No grants waiting for their start date.</p>
      ) : (
        <ul>
          {pending.map((p) => (
            <li>
              <Num field={`pending.${p.grant_id}.amount`} value={p.amount} /> {p.unit} from{" "}
              <When field={`pending.${p.grant_id}.effective_at`} value={p.effective_at} /> ({p.grant_id})
            </li>
          ))}
        </ul>
      )}
      <h3>Awaiting payment</h3>
      {awaiting.length === 0 ? (
        <p>No grants awaiting payment.</p>
      ) : (
        <ul>
          {awaiting.map((a) => (
            <li>
              <Num field={`awaiting.${a.grant_id}.amount`} value={a.amount} /> {a.unit} ({a.type}
              {a.topup ? ", automatic top-up" : ""}), requested{" "}
              <When field={`awaiting.${a.grant_id}.created_at`} value={a.created_at} /> ({a.grant_id})
            </li>
          ))}
        </ul>
      )}
      <h3>Recurring allowances</h3>
      {!recurring.ok ? (
        <ErrorNotice message={recurring.sentence} />
      ) : recurring.body.recurring_grants.filter((r) => r.status === "active").length === 0 ? (
        <p>No recurring allowances.</p>
      ) : (
        <ul>
          {recurring.body.recurring_grants
            .filter((r) => r.status === "active")
            .map((r) => (
              <li>
                <Num field={`recurring.${r.recurring_id}.amount`} value={r.amount} /> {r.unit} ({r.type}) every{" "}
                {r.interval}; next on{" "}
                <When field={`recurring.${r.recurring_id}.next_period_at`} value={r.next_period_at} />;{" "}
                <Num field={`recurring.${r.recurring_id}.periods_issued`} value={r.periods_issued} /> issued so far (
                {r.recurring_id})
              </li>
            ))}
        </ul>
      )}

      {hasChildren && children.ok ? (
        <>
          <h2 id="departments">Departments</h2>
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Department</th>
                  <th scope="col" class="num">{`Available (${q.unit})`}</th>
                  <th scope="col" class="num">
                    Held
                  </th>
                </tr>
              </thead>
              <tbody>
                {children.body.children.map((ch, i) => {
                  const b = childBalances[i];
                  return (
                    <tr>
                      <td>
                        <a href={accountHref(ch.account_id)}>
                          {ch.name ? `${ch.name} (${ch.account_id})` : ch.account_id}
                        </a>
                      </td>
                      {b?.ok ? (
                        <>
                          <td class="num">
                            <Num field={`child.${ch.account_id}.available`} value={b.body.available} />
                          </td>
                          <td class="num">
                            <Num field={`child.${ch.account_id}.held`} value={b.body.held} />
                          </td>
                        </>
                      ) : (
                        <td colspan={2}>{b && !b.ok ? b.sentence : "—"}</td>
                      )}
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
          {children.body.next_cursor ? (
            <p class="muted">{`Only the first ${CHILDREN_SHOWN} departments are listed.`}</p>
          ) : null}
        </>
      ) : null}

      <h2 id="transactions">Transactions</h2>
      <form method="get" action={`${accountHref(accountId)}#transactions`} class="filters" data-form="log-filter">
        <input type="hidden" name="unit" value={q.unit} />
        <input type="hidden" name="days" value={String(q.days)} />
        <div>
          <label for="kind">Kind</label>
          <select id="kind" name="kind">
            <option value="" selected={!q.kind}>
              All
            </option>
            {[
              "grant",
              "debit",
              "hold",
              "hold.captured",
              "hold.released",
              "receipt",
              "receipt.settled",
              "invoice",
              "invoice.reversal",
              "grant.expired",
              "grant.voided",
              "grant.refunded",
              "transfer.in",
              "transfer.out",
              "grant.rolled_over",
              "rollover",
            ].map((k) => (
              <option value={k} selected={k === q.kind}>
                {k}
              </option>
            ))}
          </select>
        </div>
        <div>
          <label for="log_unit">Unit</label>
          <select id="log_unit" name="log_unit">
            <option value="" selected={!q.logUnit}>
              All
            </option>
            {units.map((u) => (
              <option value={u} selected={u === q.logUnit}>
                {u}
              </option>
            ))}
          </select>
        </div>
        <div>
          <label for="from">From (UTC day)</label>
          <input id="from" name="from" type="date" value={q.from ?? ""} />
        </div>
        <div>
          <label for="to">To (UTC day, included)</label>
          <input id="to" name="to" type="date" value={q.to ?? ""} />
        </div>
        <button type="submit">Filter</button>
      </form>
      {log.entries.length === 0 ? (
        <p>No transactions match.</p>
      ) : (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">#</th>
                <th scope="col">Recorded</th>
                <th scope="col">Kind</th>
                <th scope="col" class="num">
                  Amount
                </th>
                <th scope="col" class="num">
                  Held change
                </th>
                <th scope="col">Unit</th>
                <th scope="col">Type</th>
                <th scope="col">Reference</th>
                <th scope="col">Reason</th>
              </tr>
            </thead>
            <tbody>
              {log.entries.map((e) => (
                <tr>
                  <td>{e.seq}</td>
                  <td>
                    <When field={`entry.${e.seq}.recorded_at`} value={e.recorded_at} />
                  </td>
                  <td data-field={`entry.${e.seq}.kind`}>{e.kind}</td>
                  <td class="num">
                    <Num field={`entry.${e.seq}.amount`} value={e.amount} />
                  </td>
                  <td class="num">
                    <Num field={`entry.${e.seq}.held_delta`} value={e.held_delta} />
                  </td>
                  <td>{e.unit}</td>
                  <td>{e.credit_type ?? "—"}</td>
                  <td>
                    <RefCell accountId={accountId} e={e} />
                  </td>
                  <td>{e.reason ?? ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <nav class="pager" aria-label="Transaction pages">
        {startAfter > 0 ? <a href={`${accountHref(accountId, keep)}#transactions`}>First page</a> : null}
        {log.next !== null ? (
          <a
            href={`${accountHref(accountId, { ...keep, after_seq: String(log.next) })}#transactions`}
            data-link="next-page"
          >
            Next page
          </a>
        ) : null}
      </nav>
      {log.scanCut ? (
        <p class="muted">{`Searched ${formatAmount(LOG_SCAN_MAX_ENTRIES)} entries for this page; the next page continues the search.`}</p>
      ) : null}
      <p class="muted">{`Oldest first, ${LOG_PAGE_SIZE} a page.`}</p>

      <h2 id="downloads">Downloads</h2>
      <p>
        <a href={`/app/accounts/${enc(accountId)}/ledger.csv`} data-link="csv" download={`ledger-${accountId}.csv`}>
          The whole ledger as CSV
        </a>{" "}
        (up to 100,000 entries a file).
      </p>
      <form method="get" action={`/app/accounts/${enc(accountId)}/statement`} class="filters" data-form="statement">
        <div>
          <label for="st_from">Statement from (UTC day)</label>
          <input id="st_from" name="from" type="date" value={monthStart} required />
        </div>
        <div>
          <label for="st_to">To (UTC day, included)</label>
          <input id="st_to" name="to" type="date" value={todayIso} required />
        </div>
        <div>
          <label for="st_unit">Unit</label>
          <select id="st_unit" name="unit">
            {units.map((u) => (
              <option value={u} selected={u === q.unit}>
                {u}
              </option>
            ))}
          </select>
        </div>
        <button type="submit">Download the signed statement</button>
      </form>
      <p class="muted">
        The statement is signed (ES256); check it against <a href="/.well-known/jwks.json">the published keys</a>.
      </p>
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

interface RefDetail {
  [member: string]: unknown;
  applied?: { grant_id: string; type: string; amount: number }[];
}

const DetailPage: FC<{ accountId: string; kind: "debit" | "invoice"; id: string; body: RefDetail }> = ({
  accountId,
  kind,
  id,
  body,
}) => (
  <>
    <p>
      <a href={accountHref(accountId)}>Back to the account</a>
    </p>
    <dl class="kv">
      {Object.entries(body)
        .filter(([, v]) => v === null || ["string", "number", "boolean"].includes(typeof v))
        .filter(([k]) => k !== "balance" && !OPERATOR_ONLY_FIELDS.includes(k))
        .map(([k, v]) => (
          <>
            <dt>{k.replace(/_/g, " ")}</dt>
            <dd>
              {typeof v === "number" && k.endsWith("_seq") ? (
                // A position in the ledger, not an amount: no thousands separators.
                <span data-field={`${kind}.${k}`} data-value={String(v)}>
                  {String(v)}
                </span>
              ) : typeof v === "number" ? (
                <Num field={`${kind}.${k}`} value={v} />
              ) : typeof v === "string" && k.endsWith("_at") ? (
                <When field={`${kind}.${k}`} value={v} />
              ) : (
                <span data-field={`${kind}.${k}`}>{v === null ? "—" : String(v)}</span>
              )}
            </dd>
          </>
        ))}
    </dl>
    {body.applied && body.applied.length > 0 ? (
      <>
        <h2>{`Credits this ${kind} drew`}</h2>
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Grant</th>
                <th scope="col">Type</th>
                <th scope="col" class="num">
                  Amount
                </th>
              </tr>
            </thead>
            <tbody>
              {body.applied.map((a) => (
                <tr>
                  <td>{a.grant_id}</td>
                  <td>{a.type}</td>
                  <td class="num">
                    <Num field={`applied.${a.grant_id}.amount`} value={a.amount} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </>
    ) : null}
    <p class="muted">{`${kind === "debit" ? "Debit" : "Invoice"} ${id}`}</p>
  </>
);

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
