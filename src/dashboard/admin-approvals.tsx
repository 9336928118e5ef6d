/**
 * /app/admin/approvals: the four-eyes queue (GET /v1/approvals), and for
 * admin and finance keys the approve and reject forms, which call the same
 * API (not the key that asked: the API refuses that with a sentence).
 */
import type { Hono } from "hono";
import type { Child } from "hono/jsx";
import type { AppEnv } from "../api/context";
import {
  type AdminContext,
  adminPage,
  adminSentence,
  api,
  Csrf,
  field,
  idParam,
  Notice,
  noticeOf,
  type Operator,
  operatorOf,
  postedForm,
  refusedPage,
  seeOther,
  seg,
} from "./admin-frame";
import { NOTE_MAX_CHARS } from "./admin-rules";
import { Num, When } from "./layout";

/** One page of the queue (the API's APPROVALS_PAGE_MAX is 100). */
export const ADMIN_APPROVALS_PAGE = 50;

const STATUSES = ["pending", "approved", "rejected"] as const;
const CURSOR = /^\d{1,15}:[A-Za-z0-9._:-]{1,128}$/;

interface Approval {
  approval_id: string;
  kind: string;
  status: string;
  request: { path: string; account_id?: string; idempotency_key: string };
  unit: string;
  amount: number;
  accounts: number;
  asked_by: string;
  created_at: string;
  decided_by: string | null;
  decided_at: string | null;
  reason: string | null;
  result: { status: number; code: string | null } | null;
}

const NOTICES: Record<string, (ref: string) => string> = {
  approved: (ref) => `Approval ${ref} was approved and its request ran.`,
  rejected: (ref) => `Approval ${ref} was rejected.`,
  bulk_pending: (ref) =>
    `The bulk grant is above the approval threshold: it waits for a second key as approval ${ref}.`,
};

export function approvalRoutes(app: Hono<AppEnv>): void {
  app.get("/admin/approvals", (c) => queuePage(c, null, 200));
  app.post("/admin/approvals/:approval_id/approve", async (c) => {
    const id = idParam(c, "approval_id");
    const form = await postedForm(c);
    const note = field(form, "note").slice(0, NOTE_MAX_CHARS);
    const res = await api(c, "POST", `/v1/approvals/${seg(id)}/approve`, note === "" ? {} : { note });
    if (!res.ok) return queuePage(c, adminSentence(res), res.status);
    return seeOther(c, "/app/admin/approvals", "approved", id);
  });
  app.post("/admin/approvals/:approval_id/reject", async (c) => {
    const id = idParam(c, "approval_id");
    const form = await postedForm(c);
    const reason = field(form, "reason");
    if (reason === "") return queuePage(c, "Say why the request is rejected.", 400);
    const res = await api(c, "POST", `/v1/approvals/${seg(id)}/reject`, { reason: reason.slice(0, NOTE_MAX_CHARS) });
    if (!res.ok) return queuePage(c, adminSentence(res), res.status);
    return seeOther(c, "/app/admin/approvals", "rejected", id);
  });
}

async function queuePage(c: AdminContext, error: string | null, status: number): Promise<Response> {
  const asked = c.req.query("status") ?? "pending";
  const show = (STATUSES as readonly string[]).includes(asked) ? asked : "pending";
  const cursor = c.req.query("cursor") ?? "";
  const q = new URLSearchParams({ status: show, limit: String(ADMIN_APPROVALS_PAGE) });
  if (CURSOR.test(cursor)) q.set("cursor", cursor);
  const res = await api<{ approvals: Approval[]; next_cursor: string | null }>(c, "GET", `/v1/approvals?${q}`);
  if (!res.ok) return refusedPage(c, "Approvals", res);
  const op = operatorOf(c);
  return adminPage(
    c,
    "Approvals",
    <>
      <Notice text={noticeOf(c, NOTICES)} />
      <form method="get" action="/app/admin/approvals" class="filters" data-form="approvals-filter">
        <p>
          <label for="ap-status">Status</label>
          <select id="ap-status" name="status">
            {STATUSES.map((s) => (
              <option value={s} selected={s === show}>
                {s}
              </option>
            ))}
          </select>
        </p>
        <button type="submit">Show</button>
      </form>
      {res.body.approvals.length === 0 ? (
        <p class="muted">No {show} approvals.</p>
      ) : (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th>Approval</th>
                <th>Kind</th>
                <th>Request</th>
                <th class="num">Amount</th>
                <th class="num">Accounts</th>
                <th>Asked by</th>
                <th>Asked</th>
                <th>Status</th>
                {op.can.decide && show === "pending" ? <th>Decide</th> : null}
              </tr>
            </thead>
            <tbody>
              {res.body.approvals.map((a) => (
                <Row a={a} op={op} decide={op.can.decide && show === "pending"} />
              ))}
            </tbody>
          </table>
        </div>
      )}
      {res.body.next_cursor ? (
        <nav class="pager" aria-label="Approval pages">
          <a href={`/app/admin/approvals?${new URLSearchParams({ status: show, cursor: res.body.next_cursor })}`}>
            More
          </a>
        </nav>
      ) : null}
    </>,
    { status, error },
  );
}

function Row(props: { a: Approval; op: Operator; decide: boolean }): Child {
  const { a, op } = props;
  const f = (m: string) => `approval.${a.approval_id}.${m}`;
  const action = (what: string) => `/app/admin/approvals/${seg(a.approval_id)}/${what}`;
  return (
    <tr>
      <td>{a.approval_id}</td>
      <td data-field={f("kind")}>{a.kind}</td>
      <td>
        {a.request.account_id ? (
          <a href={`/app/admin/accounts/${seg(a.request.account_id)}`}>{a.request.account_id}</a>
        ) : (
          a.request.path
        )}{" "}
        <span class="muted">({a.request.idempotency_key})</span>
      </td>
      <td class="num">
        <Num field={f("amount")} value={a.amount} /> {a.unit}
      </td>
      <td class="num">
        <Num field={f("accounts")} value={a.accounts} />
      </td>
      <td data-field={f("asked_by")}>{a.asked_by}</td>
      <td>
        <When field={f("created_at")} value={a.created_at} />
      </td>
      <td>
        <span data-field={f("status")}>{a.status}</span>
        {a.decided_by ? <div class="muted">by {a.decided_by}</div> : null}
        {a.reason ? <div class="muted">{a.reason}</div> : null}
      </td>
      {props.decide ? (
        <td>
          <form method="post" action={action("approve")} data-form="approve">
            <Csrf op={op} />
            <label for={`approve-${a.approval_id}`}>Note (optional)</label>
            <input id={`approve-${a.approval_id}`} name="note" maxlength={NOTE_MAX_CHARS} />
            <button type="submit">Approve</button>
          </form>
          <form method="post" action={action("reject")} data-form="reject">
            <Csrf op={op} />
            <label for={`reject-${a.approval_id}`}>Reason</label>
            <input id={`reject-${a.approval_id}`} name="reason" required maxlength={NOTE_MAX_CHARS} />
            <button type="submit">Reject</button>
          </form>
        </td>
      ) : null}
    </tr>
  );
}
