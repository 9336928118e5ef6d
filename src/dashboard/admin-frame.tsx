/**
 * What every operator page shares: the signed-in operator (read by the guard
 * in admin.tsx), its API calls with the session bearer, the page frame with
 * the navigation its role may use, and refusals as sentences.
 */
import type { Context } from "hono";
import type { Child } from "hono/jsx";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { AppEnv, Caller } from "../api/context";
import { ID_PATTERN } from "../ledger/ids";
import { type Abilities, abilitiesOf } from "./admin-rules";
import { type ApiProblem, type ApiResult, apiCall, usableId } from "./api-client";
import { CSRF_FIELD, verifiedForm } from "./csrf";
import { ErrorNotice, Layout, PageError } from "./layout";
import type { OperatorSession } from "./tokens";

export type AdminContext = Context<AppEnv>;
/** What a page handler answers (hono's c.html may answer a promise when the page renders async parts). */
export type Page = Response | Promise<Response>;

/** The signed-in operator of one request. */
export interface Operator {
  /** The session token: the bearer of every API call this page makes. */
  token: string;
  session: OperatorSession;
  caller: Caller;
  can: Abilities;
}

const operators = new WeakMap<Request, Operator>();

/** Set by the guard (admin.tsx) once the session and its key have been checked. */
export function setOperator(c: AdminContext, op: Operator): void {
  operators.set(c.req.raw, op);
}

/** The request's operator; the guard has run for every /app/admin page but the sign-in. */
export function operatorOf(c: AdminContext): Operator {
  const op = operators.get(c.req.raw);
  if (!op) throw new PageError(401, "Please sign in to the operator view.");
  return op;
}

export const operatorFrom = (token: string, session: OperatorSession, caller: Caller): Operator => ({
  token,
  session,
  caller,
  can: abilitiesOf(caller.role),
});

/** One /v1 call as the signed-in operator: the API's answer, or its refusal as a sentence. */
export const api = <T,>(c: AdminContext, method: string, path: string, body?: unknown): Promise<ApiResult<T>> =>
  apiCall<T>(c, operatorOf(c).token, method, path, body);

/** Encodes one path segment of a /v1 or /app route. */
export const seg = encodeURIComponent;

/** A POST under /app/admin, checked (same origin, the session's csrf token, bounded body): its form. */
export const postedForm = (c: AdminContext, cap?: number): Promise<FormData> =>
  verifiedForm(c, operatorOf(c).session.csrf, cap);

/** A text field of a posted form, trimmed; "" when absent or a file. */
export function field(form: FormData, name: string): string {
  const v = form.get(name);
  return typeof v === "string" ? v.trim() : "";
}

/** An amount as typed: a number when it is all digits (the API checks its range), else the text, which the API refuses. */
export const amountOf = (text: string): number | string => (/^\d{1,16}$/.test(text) ? Number(text) : text);

/** The hidden field every POST form carries. */
export const Csrf = (props: { op: Operator }): Child => (
  <input type="hidden" name={CSRF_FIELD} value={props.op.session.csrf} />
);

interface NavItem {
  href: string;
  label: string;
  show: (can: Abilities) => boolean;
}

const NAV: readonly NavItem[] = [
  { href: "/app/admin", label: "Accounts", show: () => true },
  { href: "/app/admin/bulk", label: "Bulk grants", show: (can) => can.grantTypes.length > 0 },
  { href: "/app/admin/approvals", label: "Approvals", show: () => true },
  { href: "/app/admin/campaigns", label: "Campaigns", show: () => true },
  { href: "/app/admin/alerts", label: "Alerts", show: () => true },
  { href: "/app/admin/reconciliation", label: "Reconciliation", show: () => true },
  { href: "/app/admin/audit", label: "Audit log", show: (can) => can.audit },
  { href: "/app/admin/reports", label: "Reports", show: (can) => can.reports },
];

/** The operator's navigation and sign-out, in the top bar. */
function AdminNav(props: { op: Operator }): Child {
  const { op } = props;
  return (
    <nav aria-label="Operator" style="display:flex;flex-wrap:wrap;gap:.25rem 1rem;align-items:center">
      {NAV.filter((n) => n.show(op.can)).map((n) => (
        <a href={n.href}>{n.label}</a>
      ))}
      <span data-field="key.role">{op.caller.role}</span>
      <form method="post" action="/app/admin/logout" class="inline" data-form="logout">
        <Csrf op={op} />
        <button type="submit">Sign out</button>
      </form>
    </nav>
  );
}

const NOTICE_RE = /^[a-z_]{1,32}$/;

/** A page of the operator view, with its refusal (role="alert") or notice (role="status") on top. */
export function adminPage(
  c: AdminContext,
  title: string,
  body: Child,
  opts: { status?: number; error?: string | null } = {},
): Page {
  const op = operatorOf(c);
  return c.html(
    <Layout title={title} nav={<AdminNav op={op} />}>
      {opts.error ? <ErrorNotice message={opts.error} /> : null}
      {body}
    </Layout>,
    (opts.status ?? 200) as ContentfulStatusCode,
  );
}

/** A refused read: the page frame with the API's sentence, under the API's status. */
export const refusedPage = (c: AdminContext, title: string, p: ApiProblem): Page =>
  adminPage(c, title, <p class="muted">Nothing to show.</p>, { status: p.status, error: adminSentence(p) });

/** A page the role may not open: 403 with a sentence, nothing asked of the API. */
export function notForRole(c: AdminContext, title: string, what: string): Page {
  const role = operatorOf(c).caller.role;
  return adminPage(c, title, <p class="muted">Nothing to show.</p>, {
    status: 403,
    error: `A ${role} key may not ${what}.`,
  });
}

/**
 * The sentence for a refusal, with the operator's own words for the codes
 * its forms meet most; anything else is the API client's sentence.
 */
export function adminSentence(p: ApiProblem, asked?: { amount?: number | string }): string {
  const limit = p.extra.max_grant_amount;
  switch (p.code) {
    case "grant_limit_exceeded":
      if (typeof limit === "number" && typeof asked?.amount === "number") {
        return `This grant of ${fmt(asked.amount)} is above your key's limit of ${fmt(limit)}.`;
      }
      if (limit === null)
        return "Your key has no grant limit set, so it may not grant. Ask an admin for a key with one.";
      return p.sentence;
    case "approval_closed":
      return `This request was already ${String(p.extra.approval_status ?? "decided")}.`;
    case "code_not_found":
      return "There is no such campaign.";
    case "not_found":
      return p.detail ? `${capital(p.detail)}.` : p.sentence;
    default:
      return p.sentence;
  }
}

const fmt = (n: number): string => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
const capital = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

/** `?notice=<key>&ref=<id>` after a redirect: the sentence, or null. */
export function noticeOf(c: AdminContext, sentences: Record<string, (ref: string) => string>): string | null {
  const key = c.req.query("notice") ?? "";
  const ref = c.req.query("ref") ?? "";
  if (!NOTICE_RE.test(key) || (ref !== "" && !ID_PATTERN.test(ref))) return null;
  const make = sentences[key];
  return make ? make(ref) : null;
}

/** A success notice, announced politely. */
export const Notice = (props: { text: string | null }): Child =>
  props.text ? (
    <div class="notice" role="status">
      {props.text}
    </div>
  ) : null;

/** A redirect after a successful POST (303: the browser GETs the page). */
export const seeOther = (c: AdminContext, path: string, notice: string, ref: string): Response =>
  c.redirect(`${path}?notice=${notice}&ref=${encodeURIComponent(ref)}`, 303);

/** A path id: 404 with a sentence unless it is a well-formed id. */
export function idParam(c: AdminContext, name: string): string {
  const v = c.req.param(name);
  if (v === undefined || !usableId(v)) throw new PageError(404, "There is no page at this address.");
  return v;
}
