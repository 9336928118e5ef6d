/**
 * /app/admin/accounts/{id}: the account's balance by unit and type, its lots,
 * a page of its ledger, and the forms the operator's role may use (grant,
 * void, refund; posted to admin-actions.tsx). Also rendered again by those
 * actions, with the API's refusal as a sentence and the values as typed.
 */
import type { Hono } from "hono";
import type { Child } from "hono/jsx";
import type { AppEnv } from "../api/context";
import type { CreditType } from "../ledger/types";
import {
  type AdminContext,
  adminPage,
  api,
  Csrf,
  idParam,
  Notice,
  noticeOf,
  type Operator,
  operatorOf,
  refusedPage,
  seg,
} from "./admin-frame";
import { EMPTY_TERMS, type GrantTerms, ReasonFields, TermsTail, TypeSelect } from "./admin-grant-fields";
import { formId } from "./admin-rules";
import { Num, When } from "./layout";

/** The account page shows the first this many lots (GET …/grants?limit=). */
export const ADMIN_LOTS_SHOWN = 100;
/** …balances of at most this many units (those its lots are in, credits first)… */
export const ADMIN_UNITS_SHOWN = 10;
/** …and ledger pages of this many entries (?after_seq= pages on). */
export const ADMIN_LEDGER_PAGE = 50;

export interface Lot {
  grant_id: string;
  amount: number;
  unit: string;
  type: CreditType;
  remaining: number;
  held: number;
  status: string;
  reason: string | null;
  expires_at: string | null;
  created_at: string;
}

interface Balance {
  unit: string;
  available: number;
  held: number;
  by_type: Record<string, number>;
}

interface Entry {
  seq: number;
  kind: string;
  amount: number;
  unit: string;
  grant_id: string | null;
  actor: string | null;
  reason: string | null;
  ref: string | null;
  recorded_at: string;
}

/** What the grant form showed when it was sent (kept when the API refuses it). */
export interface GrantValues extends GrantTerms {
  expires_at: string;
}

const EMPTY: GrantValues = { ...EMPTY_TERMS, expires_at: "" };

const NOTICES: Record<string, (ref: string) => string> = {
  granted: (ref) => `Grant ${ref} was issued.`,
  pending: (ref) => `The grant is above the approval threshold: it waits for a second key as approval ${ref}.`,
  voided: (ref) => `Grant ${ref} was voided.`,
  refunded: (ref) => `Grant ${ref} was refunded.`,
};

export function accountRoutes(app: Hono<AppEnv>): void {
  app.get("/admin/accounts/:account_id", (c) =>
    accountPage(c, idParam(c, "account_id"), { notice: noticeOf(c, NOTICES) }),
  );
}

export interface AccountPageOpts {
  notice?: string | null;
  error?: string | null;
  status?: number;
  values?: GrantValues;
}

/** The account page, with an optional refusal (and the grant form's values) or notice. */
export async function accountPage(c: AdminContext, accountId: string, opts: AccountPageOpts): Promise<Response> {
  const title = `Account ${accountId}`;
  const base = `/v1/accounts/${seg(accountId)}`;
  const afterSeq = /^\d{1,15}$/.test(c.req.query("after_seq") ?? "") ? Number(c.req.query("after_seq")) : 0;
  const [account, lots, ledger] = await Promise.all([
    api<{ account_id: string; name: string | null; parent_id: string | null; verified: boolean }>(c, "GET", base),
    api<{ grants: Lot[]; next_cursor: string | null }>(c, "GET", `${base}/grants?limit=${ADMIN_LOTS_SHOWN}`),
    api<{ entries: Entry[]; next_after_seq: number | null }>(
      c,
      "GET",
      `${base}/ledger?after_seq=${afterSeq}&limit=${ADMIN_LEDGER_PAGE}`,
    ),
  ]);
  if (!account.ok) return refusedPage(c, title, account);
  if (!lots.ok) return refusedPage(c, title, lots);
  const units = unitsOf(lots.body.grants);
  const balances = await Promise.all(units.map((u) => api<Balance>(c, "GET", `${base}/balance?unit=${seg(u)}`)));
  const op = operatorOf(c);
  return adminPage(
    c,
    title,
    <>
      <Notice text={opts.notice ?? null} />
      <p class="muted">
        {account.body.name ?? "No name"} · {account.body.verified ? "verified" : "not verified"}
        {account.body.parent_id ? ` · parent ${account.body.parent_id}` : ""}
      </p>
      <h2>Balance</h2>
      <div class="cards">
        {balances.map((b) => (b.ok ? <BalanceCard b={b.body} /> : <p class="muted">{b.sentence}</p>))}
      </div>
      {op.can.grantTypes.length > 0 ? <GrantForm op={op} accountId={accountId} values={opts.values ?? EMPTY} /> : null}
      <h2>Lots</h2>
      <LotTable op={op} accountId={accountId} lots={lots.body.grants} more={lots.body.next_cursor !== null} />
      <h2>Ledger</h2>
      {ledger.ok ? (
        <LedgerTable accountId={accountId} entries={ledger.body.entries} next={ledger.body.next_after_seq} />
      ) : (
        <p class="muted">{ledger.sentence}</p>
      )}
    </>,
    { status: opts.status ?? 200, error: opts.error ?? null },
  );
}

/** The units the account's lots are in, credits first, at most ADMIN_UNITS_SHOWN. */
function unitsOf(lots: readonly Lot[]): string[] {
  const units = new Set<string>(["credits"]);
  for (const l of lots) if (units.size < ADMIN_UNITS_SHOWN) units.add(l.unit);
  return [...units];
}

function BalanceCard(props: { b: Balance }): Child {
  const { b } = props;
  const f = (m: string) => `balance.${b.unit}.${m}`;
  return (
    <div class="card">
      <div>{b.unit}</div>
      <div class="big">
        <Num field={f("available")} value={b.available} />
      </div>
      <div class="muted">
        available · held <Num field={f("held")} value={b.held} />
      </div>
      {Object.entries(b.by_type).map(([t, v]) => (
        <div>
          {t}: <Num field={f(`by_type.${t}`)} value={v} />
        </div>
      ))}
    </div>
  );
}

function GrantForm(props: { op: Operator; accountId: string; values: GrantValues }): Child {
  const { op, values: v } = props;
  const limit = op.caller.maxGrantAmount;
  return (
    <section aria-labelledby="grant-h">
      <h2 id="grant-h">Grant credits</h2>
      <p>
        Your key's limit per grant:{" "}
        {limit === null ? (
          <span data-field="key.max_grant_amount" data-value="">
            no limit
          </span>
        ) : (
          <Num field="key.max_grant_amount" value={limit} />
        )}
      </p>
      <form method="post" action={`/app/admin/accounts/${seg(props.accountId)}/grants`} data-form="grant">
        <Csrf op={op} />
        <input type="hidden" name="grant_id" value={formId("dash")} />
        <TypeSelect id="grant" op={op} type={v.type} />
        <p>
          <label for="grant-amount">Amount</label>
          <input
            id="grant-amount"
            name="amount"
            inputmode="numeric"
            required
            value={v.amount}
            {...(limit === null ? {} : { max: String(limit) })}
          />
        </p>
        <TermsTail id="grant" v={v} />
        <p>
          <label for="grant-expires">Expires at, UTC (optional)</label>
          <input id="grant-expires" name="expires_at" type="datetime-local" value={v.expires_at} />
        </p>
        <button type="submit">Grant</button>
      </form>
    </section>
  );
}

const OPEN = new Set(["active", "pending"]);

function LotTable(props: { op: Operator; accountId: string; lots: readonly Lot[]; more: boolean }): Child {
  const { op } = props;
  if (props.lots.length === 0) return <p class="muted">No lots yet.</p>;
  const action = (g: string, what: string) => `/app/admin/accounts/${seg(props.accountId)}/grants/${seg(g)}/${what}`;
  return (
    <div class="table-wrap">
      <table>
        <thead>
          <tr>
            <th>Grant</th>
            <th>Type</th>
            <th class="num">Amount</th>
            <th class="num">Remaining</th>
            <th class="num">Held</th>
            <th>Status</th>
            <th>Expires</th>
            <th>Created</th>
            {op.can.voidAndRefund ? <th>Actions</th> : null}
          </tr>
        </thead>
        <tbody>
          {props.lots.map((l) => {
            const f = (m: string) => `lot.${l.grant_id}.${m}`;
            return (
              <tr>
                <td>{l.grant_id}</td>
                <td data-field={f("type")}>{l.type}</td>
                <td class="num">
                  <Num field={f("amount")} value={l.amount} /> {l.unit}
                </td>
                <td class="num">
                  <Num field={f("remaining")} value={l.remaining} />
                </td>
                <td class="num">
                  <Num field={f("held")} value={l.held} />
                </td>
                <td data-field={f("status")}>{l.status}</td>
                <td>
                  <When field={f("expires_at")} value={l.expires_at} />
                </td>
                <td>
                  <When field={f("created_at")} value={l.created_at} />
                </td>
                {op.can.voidAndRefund ? (
                  <td>
                    {OPEN.has(l.status) ? (
                      <details>
                        <summary>Void</summary>
                        <form method="post" action={action(l.grant_id, "void")} data-form="void">
                          <Csrf op={op} />
                          <ReasonFields id={`void-${l.grant_id}`} />
                          <button type="submit">Void {l.grant_id}</button>
                        </form>
                      </details>
                    ) : null}
                    {l.type === "purchased" && l.remaining - l.held > 0 && l.status !== "voided" ? (
                      <details>
                        <summary>Refund</summary>
                        <form method="post" action={action(l.grant_id, "refund")} data-form="refund">
                          <Csrf op={op} />
                          <input type="hidden" name="refund_id" value={formId("refund")} />
                          <p>
                            <label for={`refund-${l.grant_id}-amount`}>Amount (empty: all that is left)</label>
                            <input id={`refund-${l.grant_id}-amount`} name="amount" inputmode="numeric" />
                          </p>
                          <ReasonFields id={`refund-${l.grant_id}`} />
                          <button type="submit">Refund {l.grant_id}</button>
                        </form>
                      </details>
                    ) : null}
                  </td>
                ) : null}
              </tr>
            );
          })}
        </tbody>
      </table>
      {props.more ? <p class="muted">Only the first {ADMIN_LOTS_SHOWN} lots are shown.</p> : null}
    </div>
  );
}

function LedgerTable(props: { accountId: string; entries: readonly Entry[]; next: number | null }): Child {
  if (props.entries.length === 0) return <p class="muted">No entries on this page.</p>;
  return (
    <>
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th class="num">Seq</th>
              <th>Kind</th>
              <th class="num">Amount</th>
              <th>Grant</th>
              <th>Actor</th>
              <th>Reason</th>
              <th>Recorded</th>
            </tr>
          </thead>
          <tbody>
            {props.entries.map((e) => {
              const f = (m: string) => `entry.${e.seq}.${m}`;
              return (
                <tr>
                  <td class="num">{e.seq}</td>
                  <td data-field={f("kind")}>{e.kind}</td>
                  <td class="num">
                    <Num field={f("amount")} value={e.amount} /> {e.unit}
                  </td>
                  <td>{e.grant_id ?? e.ref ?? ""}</td>
                  <td data-field={f("actor")}>{e.actor ?? ""}</td>
                  <td data-field={f("reason")}>{e.reason ?? ""}</td>
                  <td>
                    <When field={f("recorded_at")} value={e.recorded_at} />
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      {props.next !== null ? (
        <nav class="pager" aria-label="Ledger pages">
          <a href={`/app/admin/accounts/${seg(props.accountId)}?after_seq=${props.next}`}>Next entries</a>
        </nav>
      ) : null}
    </>
  );
}
