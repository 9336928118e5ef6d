/**
 * The operator's read-only logs: alerts (GET /v1/alerts), reconciliation
 * runs (GET /v1/reconciliation/runs, one run with its drifts) and the audit
 * log (GET /v1/audit, admin and finance), each a page at a time with the
 * API's own cursor. Query values go to the API as typed; it refuses what is
 * malformed, and the refusal is shown as a sentence.
 */
import type { Hono } from "hono";
import type { Child } from "hono/jsx";
import type { AppEnv } from "../api/context";
import { type AdminContext, adminPage, api, idParam, notForRole, operatorOf, refusedPage, seg } from "./admin-frame";
import { Num, When } from "./layout";

/** Rows per page of each log. */
export const ADMIN_LOG_PAGE = 50;
/** A query value longer than this is not passed on (no API filter is longer). */
const QUERY_VALUE_MAX = 256;

/** The named query parameters of this request that are present, for the API. */
function passOn(c: AdminContext, names: readonly string[]): URLSearchParams {
  const q = new URLSearchParams({ limit: String(ADMIN_LOG_PAGE) });
  for (const n of names) {
    const v = (c.req.query(n) ?? "").trim();
    if (v !== "" && v.length <= QUERY_VALUE_MAX) q.set(n, v);
  }
  return q;
}

const more = (base: string, q: URLSearchParams, key: string, next: string | number | null): Child => {
  if (next === null) return null;
  const p = new URLSearchParams(q);
  p.delete("limit");
  p.set(key, String(next));
  return (
    <nav class="pager" aria-label="Pages">
      <a href={`${base}?${p}`}>More</a>
    </nav>
  );
};

interface Alert {
  id: string;
  type: string;
  account_id: string | null;
  unit: string | null;
  data: Record<string, string | number | boolean | null>;
  created_at: string;
}

interface Run {
  id: string;
  started_at: string;
  finished_at: string;
  accounts_checked: number;
  accounts_lagging: number;
  accounts_failed: number;
  drifts: number;
  entries_verified: number;
  duration_ms: number;
}

interface Drift {
  account_id: string;
  kind: string;
  unit: string | null;
  expected: string | null;
  actual: string | null;
  detail: string;
  detected_at: string;
}

interface AuditEvent {
  id: number;
  at: string;
  actor: string;
  action: string;
  target: string;
  request_id: string;
}

const Filter = (props: { action: string; name: string; label: string; value: string; form: string }): Child => (
  <form method="get" action={props.action} class="filters" data-form={props.form}>
    <p>
      <label for={`f-${props.name}`}>{props.label}</label>
      <input id={`f-${props.name}`} name={props.name} value={props.value} maxlength={QUERY_VALUE_MAX} />
    </p>
    <button type="submit">Filter</button>
  </form>
);

export function opsRoutes(app: Hono<AppEnv>): void {
  app.get("/admin/alerts", async (c) => {
    const q = passOn(c, ["type", "account_id", "cursor"]);
    const res = await api<{ alerts: Alert[]; next_cursor: string | null }>(c, "GET", `/v1/alerts?${q}`);
    if (!res.ok) return refusedPage(c, "Alerts", res);
    return adminPage(
      c,
      "Alerts",
      <>
        <Filter
          action="/app/admin/alerts"
          form="alerts-filter"
          name="account_id"
          label="Account id"
          value={q.get("account_id") ?? ""}
        />
        {res.body.alerts.length === 0 ? (
          <p class="muted">No alerts.</p>
        ) : (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th>When</th>
                  <th>Type</th>
                  <th>Account</th>
                  <th>Details</th>
                </tr>
              </thead>
              <tbody>
                {res.body.alerts.map((a) => (
                  <tr>
                    <td>
                      <When field={`alert.${a.id}.created_at`} value={a.created_at} />
                    </td>
                    <td data-field={`alert.${a.id}.type`}>{a.type}</td>
                    <td data-field={`alert.${a.id}.account_id`}>
                      {a.account_id ? <a href={`/app/admin/accounts/${seg(a.account_id)}`}>{a.account_id}</a> : "—"}
                    </td>
                    <td>
                      {Object.entries(a.data)
                        .map(([k, v]) => `${k}: ${String(v)}`)
                        .join(" · ")}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {more("/app/admin/alerts", q, "cursor", res.body.next_cursor)}
      </>,
    );
  });

  app.get("/admin/reconciliation", async (c) => {
    const q = passOn(c, ["cursor"]);
    const res = await api<{ runs: Run[]; next_cursor: string | null }>(c, "GET", `/v1/reconciliation/runs?${q}`);
    if (!res.ok) return refusedPage(c, "Reconciliation runs", res);
    return adminPage(
      c,
      "Reconciliation runs",
      <>
        {res.body.runs.length === 0 ? <p class="muted">No runs yet.</p> : <RunTable runs={res.body.runs} />}
        {more("/app/admin/reconciliation", q, "cursor", res.body.next_cursor)}
      </>,
    );
  });

  app.get("/admin/reconciliation/:run_id", async (c) => {
    const id = idParam(c, "run_id");
    const res = await api<{ run: Run; drifts: Drift[] }>(c, "GET", `/v1/reconciliation/runs/${seg(id)}`);
    if (!res.ok) return refusedPage(c, `Reconciliation run ${id}`, res);
    return adminPage(
      c,
      `Reconciliation run ${id}`,
      <>
        <RunTable runs={[res.body.run]} />
        <h2>Drifts</h2>
        {res.body.drifts.length === 0 ? (
          <p class="muted">No drift: D1 matched every account's Durable Object.</p>
        ) : (
          <ul>
            {res.body.drifts.map((d) => (
              <li>
                <a href={`/app/admin/accounts/${seg(d.account_id)}`}>{d.account_id}</a> {d.kind}: {d.detail}
              </li>
            ))}
          </ul>
        )}
      </>,
    );
  });

  app.get("/admin/audit", async (c) => {
    if (!operatorOf(c).can.audit) return notForRole(c, "Audit log", "read the audit log");
    const q = passOn(c, ["after", "actor", "action", "target"]);
    const res = await api<{ events: AuditEvent[]; next_after: number | null }>(c, "GET", `/v1/audit?${q}`);
    if (!res.ok) return refusedPage(c, "Audit log", res);
    return adminPage(
      c,
      "Audit log",
      <>
        <form method="get" action="/app/admin/audit" class="filters" data-form="audit-filter">
          {(["actor", "action", "target"] as const).map((n) => (
            <p>
              <label for={`audit-${n}`}>{n[0]?.toUpperCase() + n.slice(1)}</label>
              <input id={`audit-${n}`} name={n} value={q.get(n) ?? ""} maxlength={QUERY_VALUE_MAX} />
            </p>
          ))}
          <button type="submit">Filter</button>
        </form>
        {res.body.events.length === 0 ? (
          <p class="muted">No events.</p>
        ) : (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th class="num">Id</th>
                  <th>When</th>
                  <th>Actor</th>
                  <th>Action</th>
                  <th>Target</th>
                </tr>
              </thead>
              <tbody>
                {res.body.events.map((e) => (
                  <tr>
                    <td class="num">{e.id}</td>
                    <td>
                      <When field={`audit.${e.id}.at`} value={e.at} />
                    </td>
                    <td data-field={`audit.${e.id}.actor`}>{e.actor}</td>
                    <td data-field={`audit.${e.id}.action`}>{e.action}</td>
                    <td data-field={`audit.${e.id}.target`}>{e.target}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {more("/app/admin/audit", q, "after", res.body.next_after)}
      </>,
    );
  });
}

function RunTable(props: { runs: readonly Run[] }): Child {
  return (
    <div class="table-wrap">
      <table>
        <thead>
          <tr>
            <th>Run</th>
            <th>Started</th>
            <th class="num">Accounts checked</th>
            <th class="num">Lagging</th>
            <th class="num">Failed</th>
            <th class="num">Drifts</th>
            <th class="num">Entries verified</th>
            <th class="num">ms</th>
          </tr>
        </thead>
        <tbody>
          {props.runs.map((r) => {
            const f = (m: string) => `run.${r.id}.${m}`;
            return (
              <tr>
                <td>
                  <a href={`/app/admin/reconciliation/${seg(r.id)}`}>{r.id}</a>
                </td>
                <td>
                  <When field={f("started_at")} value={r.started_at} />
                </td>
                <td class="num">
                  <Num field={f("accounts_checked")} value={r.accounts_checked} />
                </td>
                <td class="num">
                  <Num field={f("accounts_lagging")} value={r.accounts_lagging} />
                </td>
                <td class="num">
                  <Num field={f("accounts_failed")} value={r.accounts_failed} />
                </td>
                <td class="num">
                  <Num field={f("drifts")} value={r.drifts} />
                </td>
                <td class="num">
                  <Num field={f("entries_verified")} value={r.entries_verified} />
                </td>
                <td class="num">
                  <Num field={f("duration_ms")} value={r.duration_ms} />
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
