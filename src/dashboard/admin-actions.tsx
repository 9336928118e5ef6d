/**
 * The account page's actions: grant, void, refund. Each checks the form
 * (same origin, the session's csrf token), asks the same /v1 route with the
 * operator session as bearer (so the entry's actor is the key), and either
 * redirects back with a notice or shows the account page again with the
 * API's refusal as a sentence, under the API's status. Nothing is decided
 * here that the API does not decide again.
 */
import type { Hono } from "hono";
import type { AppEnv } from "../api/context";
import { type AccountPageOpts, accountPage, type GrantValues } from "./admin-account";
import {
  type AdminContext,
  adminSentence,
  amountOf,
  api,
  field,
  idParam,
  operatorOf,
  postedForm,
  seeOther,
  seg,
} from "./admin-frame";
import { termsOf } from "./admin-grant-fields";
import { formId, isReasonCode, NOTE_MAX_CHARS, type ReasonCode, reasonText } from "./admin-rules";
import type { ApiProblem } from "./api-client";

export function actionRoutes(app: Hono<AppEnv>): void {
  app.post("/admin/accounts/:account_id/grants", postGrant);
  app.post("/admin/accounts/:account_id/grants/:grant_id/void", postVoid);
  app.post("/admin/accounts/:account_id/grants/:grant_id/refund", postRefund);
}

/** The reason code and note of a posted form, or the sentence saying what is missing. */
export function reasonOf(form: FormData): { code: ReasonCode; note: string } | { error: string } {
  const code = field(form, "reason_code");
  const note = field(form, "note");
  if (!isReasonCode(code)) return { error: "Choose a reason code for this action." };
  if (note.length > NOTE_MAX_CHARS) return { error: `The note may hold at most ${NOTE_MAX_CHARS} characters.` };
  if (code === "other" && note === "") return { error: "With the reason “Other”, say why in the note." };
  return { code, note };
}

const again = (c: AdminContext, accountId: string, opts: AccountPageOpts) => accountPage(c, accountId, opts);

const refused = (c: AdminContext, accountId: string, p: ApiProblem, values?: GrantValues, amount?: number | string) =>
  again(c, accountId, {
    status: p.status,
    error: adminSentence(p, { ...(amount === undefined ? {} : { amount }) }),
    ...(values ? { values } : {}),
  });

/** `datetime-local` (read as UTC) → RFC 3339; other text is passed on for the API to refuse. */
const utcTime = (local: string): string => (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/.test(local) ? `${local}:00Z` : local);

async function postGrant(c: AdminContext): Promise<Response> {
  const accountId = idParam(c, "account_id");
  const form = await postedForm(c);
  const op = operatorOf(c);
  const values: GrantValues = {
    ...termsOf(form),
    expires_at: field(form, "expires_at"),
  };
  const reason = reasonOf(form);
  if ("error" in reason) return again(c, accountId, { status: 400, error: reason.error, values });
  const amount = amountOf(values.amount);
  const body: Record<string, unknown> = {
    grant_id: field(form, "grant_id") || formId("dash"),
    type: values.type,
    amount,
    unit: values.unit,
    reason: reasonText(reason.code, reason.note),
    source: op.caller.role,
    metadata: { reason_code: reason.code },
  };
  if (values.incident_id !== "") body.incident_id = values.incident_id;
  if (values.expires_at !== "") body.expires_at = utcTime(values.expires_at);
  const res = await api<{ grant?: { grant_id: string }; approval_id?: string }>(
    c,
    "POST",
    `/v1/accounts/${seg(accountId)}/grants`,
    body,
  );
  if (!res.ok) return refused(c, accountId, res, values, amount);
  const page = `/app/admin/accounts/${seg(accountId)}`;
  if (res.status === 202 && res.body.approval_id) return seeOther(c, page, "pending", res.body.approval_id);
  return seeOther(c, page, "granted", res.body.grant?.grant_id ?? String(body.grant_id));
}

async function postVoid(c: AdminContext): Promise<Response> {
  const accountId = idParam(c, "account_id");
  const grantId = idParam(c, "grant_id");
  const form = await postedForm(c);
  const reason = reasonOf(form);
  if ("error" in reason) return again(c, accountId, { status: 400, error: reason.error });
  const res = await api(c, "POST", `/v1/accounts/${seg(accountId)}/grants/${seg(grantId)}/void`, {
    reason: reasonText(reason.code, reason.note),
  });
  if (!res.ok) return refused(c, accountId, res);
  return seeOther(c, `/app/admin/accounts/${seg(accountId)}`, "voided", grantId);
}

async function postRefund(c: AdminContext): Promise<Response> {
  const accountId = idParam(c, "account_id");
  const grantId = idParam(c, "grant_id");
  const form = await postedForm(c);
  const reason = reasonOf(form);
  if ("error" in reason) return again(c, accountId, { status: 400, error: reason.error });
  const body: Record<string, unknown> = {
    refund_id: field(form, "refund_id") || formId("refund"),
    reason: reasonText(reason.code, reason.note),
  };
  const amount = field(form, "amount");
  if (amount !== "") body.amount = amountOf(amount);
  const res = await api(c, "POST", `/v1/accounts/${seg(accountId)}/grants/${seg(grantId)}/refund`, body);
  if (!res.ok) return refused(c, accountId, res);
  return seeOther(c, `/app/admin/accounts/${seg(accountId)}`, "refunded", grantId);
}
