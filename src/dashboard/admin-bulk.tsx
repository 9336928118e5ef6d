/**
 * /app/admin/bulk: one grant to many accounts for an incident. The ids are
 * pasted (one per line) or uploaded (a text or CSV file, first column); the
 * job goes to POST /v1/grants/bulk with the operator's session, and
 * /app/admin/bulk/{bulk_id} shows its progress as the API reports it.
 */
import type { Hono } from "hono";
import type { Child } from "hono/jsx";
import type { AppEnv } from "../api/context";
import { BULK_MAX_ACCOUNTS } from "../bulk/queue";
import { reasonOf } from "./admin-actions";
import {
  type AdminContext,
  adminPage,
  adminSentence,
  amountOf,
  api,
  Csrf,
  field,
  idParam,
  Notice,
  notForRole,
  noticeOf,
  operatorOf,
  type Page,
  postedForm,
  refusedPage,
  seeOther,
  seg,
} from "./admin-frame";
import { EMPTY_TERMS, type GrantTerms, TermsTail, TypeSelect, termsOf } from "./admin-grant-fields";
import { accountIdsOf, BULK_FILE_MAX_BYTES, formId, reasonText } from "./admin-rules";
import { Num, When } from "./layout";

/** A bulk form (pasted ids, an uploaded file and the grant's fields) is at most this many bytes. */
export const BULK_FORM_MAX_BYTES = 2 * BULK_FILE_MAX_BYTES + 16_384;

interface BulkValues extends GrantTerms {
  account_ids: string;
}

const EMPTY: BulkValues = { ...EMPTY_TERMS, account_ids: "" };

interface BulkStatus {
  bulk_id: string;
  status: string;
  total: number;
  granted: number;
  skipped: number;
  failed: number;
  pending: number;
  errors: { account_id: string; code: string }[];
  errors_more: boolean;
  created_at: string;
}

export function bulkRoutes(app: Hono<AppEnv>): void {
  app.get("/admin/bulk", (c) => {
    if (operatorOf(c).can.grantTypes.length === 0) return notForRole(c, "Bulk grants", "issue grants");
    return bulkForm(c, EMPTY, null, 200);
  });
  app.post("/admin/bulk", postBulk);
  app.get("/admin/bulk/:bulk_id", async (c) => {
    const bulkId = idParam(c, "bulk_id");
    const res = await api<BulkStatus>(c, "GET", `/v1/grants/bulk/${seg(bulkId)}`);
    if (!res.ok) return refusedPage(c, `Bulk grant ${bulkId}`, res);
    return adminPage(c, `Bulk grant ${bulkId}`, <StatusView s={res.body} notice={noticeOf(c, NOTICES)} />);
  });
}

const NOTICES: Record<string, (ref: string) => string> = {
  started: (ref) => `Bulk grant ${ref} was accepted. Reload this page to follow its progress.`,
};

function bulkForm(c: AdminContext, v: BulkValues, error: string | null, status: number): Page {
  const op = operatorOf(c);
  const limit = op.caller.maxGrantAmount;
  return adminPage(
    c,
    "Bulk grants",
    <form method="post" action="/app/admin/bulk" enctype="multipart/form-data" data-form="bulk-grant">
      <Csrf op={op} />
      <input type="hidden" name="bulk_id" value={formId("bulk")} />
      <p>
        Each account gets one lot, once, however often the job runs. Up to {BULK_MAX_ACCOUNTS} accounts; unknown
        accounts are created. Your key's limit per grant:{" "}
        {limit === null ? (
          <span data-field="key.max_grant_amount" data-value="">
            no limit
          </span>
        ) : (
          <Num field="key.max_grant_amount" value={limit} />
        )}
      </p>
      <p>
        <label for="bulk-ids">Account ids, one per line</label>
        <textarea id="bulk-ids" name="account_ids" rows={8} cols={40}>
          {v.account_ids}
        </textarea>
      </p>
      <p>
        <label for="bulk-file">Or a text or CSV file of account ids (first column)</label>
        <input id="bulk-file" name="account_file" type="file" accept=".txt,.csv,text/plain,text/csv" />
      </p>
      <TypeSelect id="bulk" op={op} type={v.type} />
      <p>
        <label for="bulk-amount">Amount per account</label>
        <input id="bulk-amount" name="amount" inputmode="numeric" required value={v.amount} />
      </p>
      <TermsTail id="bulk" v={v} />
      <button type="submit">Start bulk grant</button>
    </form>,
    { status, error },
  );
}

/** The pasted ids and the uploaded file's, together (the file read up to BULK_FILE_MAX_BYTES). */
async function idsOf(form: FormData): Promise<{ ids: string[]; bad: string[] } | { error: string }> {
  let text = field(form, "account_ids");
  const file = form.get("account_file");
  if (file !== null && typeof file !== "string" && file.size > 0) {
    if (file.size > BULK_FILE_MAX_BYTES) {
      return { error: `The file is too large: it may hold at most ${BULK_FILE_MAX_BYTES} bytes.` };
    }
    text = `${text}\n${await file.text()}`;
  }
  return accountIdsOf(text);
}

async function postBulk(c: AdminContext): Promise<Response> {
  const form = await postedForm(c, BULK_FORM_MAX_BYTES);
  const op = operatorOf(c);
  const v: BulkValues = {
    ...termsOf(form),
    account_ids: field(form, "account_ids").slice(0, BULK_FILE_MAX_BYTES),
  };
  const reason = reasonOf(form);
  if ("error" in reason) return bulkForm(c, v, reason.error, 400);
  const parsed = await idsOf(form);
  if ("error" in parsed) return bulkForm(c, v, parsed.error, 413);
  if (parsed.bad.length > 0) {
    return bulkForm(c, v, `These lines are not account ids: ${parsed.bad.join(", ")}. Fix them and send again.`, 400);
  }
  if (parsed.ids.length === 0) return bulkForm(c, v, "Paste or upload at least one account id.", 400);
  if (parsed.ids.length > BULK_MAX_ACCOUNTS) {
    return bulkForm(c, v, `A bulk grant may name at most ${BULK_MAX_ACCOUNTS} accounts.`, 400);
  }
  const amount = amountOf(v.amount);
  const grant: Record<string, unknown> = {
    type: v.type,
    amount,
    unit: v.unit,
    reason: reasonText(reason.code, reason.note),
    source: op.caller.role,
    metadata: { reason_code: reason.code },
  };
  if (v.incident_id !== "") grant.incident_id = v.incident_id;
  const bulkId = field(form, "bulk_id") || formId("bulk");
  const res = await api<{ bulk_id?: string; approval_id?: string }>(c, "POST", "/v1/grants/bulk", {
    bulk_id: bulkId,
    account_ids: parsed.ids,
    grant,
  });
  if (!res.ok) return bulkForm(c, v, adminSentence(res, { amount }), res.status);
  if (res.body.approval_id) return seeOther(c, "/app/admin/approvals", "bulk_pending", res.body.approval_id);
  return seeOther(c, `/app/admin/bulk/${seg(bulkId)}`, "started", bulkId);
}

function StatusView(props: { s: BulkStatus; notice: string | null }): Child {
  const { s } = props;
  return (
    <>
      <Notice text={props.notice} />
      <div class="kv">
        <span>Status</span>
        <span data-field="bulk.status">{s.status}</span>
        <span>Started</span>
        <When field="bulk.created_at" value={s.created_at} />
        <span>Accounts</span>
        <Num field="bulk.total" value={s.total} />
        <span>Granted</span>
        <Num field="bulk.granted" value={s.granted} />
        <span>Already held it</span>
        <Num field="bulk.skipped" value={s.skipped} />
        <span>Refused</span>
        <Num field="bulk.failed" value={s.failed} />
        <span>Waiting</span>
        <Num field="bulk.pending" value={s.pending} />
      </div>
      {s.errors.length > 0 ? (
        <>
          <h2>Refused accounts</h2>
          <ul>
            {s.errors.map((e) => (
              <li>
                {e.account_id}: <span data-field={`bulk.error.${e.account_id}.code`}>{e.code}</span>
              </li>
            ))}
          </ul>
          {s.errors_more ? <p class="muted">More accounts were refused than are listed.</p> : null}
        </>
      ) : null}
      <p>
        <a href={`/app/admin/bulk/${seg(s.bulk_id)}`}>Refresh</a> · <a href="/app/admin/bulk">New bulk grant</a>
      </p>
    </>
  );
}
