/**
 * The dashboard's shared page frame and formatting: one inline stylesheet (no
 * external requests), readable at 375 px, visible keyboard focus, text and
 * controls at ≥ 4.5:1 contrast; one way to show a date and an amount.
 */
import { raw } from "hono/html";
import type { Child, FC, PropsWithChildren } from "hono/jsx";

/**
 * Colours (on white): text #1a1a1a (17:1), muted #4a4a4a (8.9:1), links and
 * buttons #0b4f9c (8.0:1), error #9b1c1c (7.9:1), focus ring #b45309 outline.
 */
const CSS = `
*,*::before,*::after{box-sizing:border-box}
html{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;font-size:16px;line-height:1.5;color:#1a1a1a;background:#fff}
body{margin:0}
header.top{background:#0b2545;color:#fff;padding:.75rem 1rem;display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;justify-content:space-between}
header.top a,header.top button{color:#fff}
header.top .brand{font-weight:700;text-decoration:none}
main{max-width:64rem;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;margin:.5rem 0 1rem}
h2{font-size:1.2rem;margin:1.75rem 0 .5rem;border-bottom:1px solid #d0d0d0;padding-bottom:.25rem}
a{color:#0b4f9c}
a:focus-visible,button:focus-visible,input:focus-visible,select:focus-visible,textarea:focus-visible,summary:focus-visible{outline:3px solid #b45309;outline-offset:2px}
.muted{color:#4a4a4a}
.table-wrap{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;width:100%;font-size:.95rem}
th,td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid #e0e0e0;vertical-align:top}
th{background:#f3f4f6}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(14rem,1fr));gap:.75rem}
.card{border:1px solid #d0d0d0;border-radius:.5rem;padding:.75rem}
.card .big{font-size:1.5rem;font-weight:700;font-variant-numeric:tabular-nums}
form.inline{display:inline}
form.filters{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:flex-end;margin:.5rem 0}
label{display:block;font-weight:600;font-size:.9rem}
input,select,textarea{font:inherit;padding:.35rem .5rem;border:1px solid #6b6b6b;border-radius:.25rem;background:#fff;color:#1a1a1a;max-width:100%}
button,.button{font:inherit;padding:.4rem .9rem;border-radius:.25rem;border:1px solid #0b4f9c;background:#0b4f9c;color:#fff;cursor:pointer;text-decoration:none;display:inline-block}
header.top button{background:transparent;border-color:#fff}
.alert{border:2px solid #9b1c1c;background:#fdf2f2;color:#9b1c1c;padding:.75rem 1rem;border-radius:.25rem;margin:1rem 0}
.notice{border:1px solid #0b4f9c;background:#eef4fb;padding:.75rem 1rem;border-radius:.25rem;margin:1rem 0}
nav.pager{display:flex;gap:1rem;margin:.75rem 0}
svg.chart{width:100%;height:auto;max-height:14rem}
svg.chart rect.bar{fill:#0b4f9c}
.kv{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}
@media (max-width:480px){main{padding:.75rem}h1{font-size:1.25rem}th,td{padding:.3rem}}
`;

export interface LayoutProps {
  title: string;
  /** Shown at the right of the top bar (a sign-out form, the account). */
  nav?: Child;
  /**
   * The page's referrer policy (meta, matching the header src/dashboard/app.tsx
   * sets): `same-origin` (DASHBOARD_REFERRER_POLICY) unless a page whose URL
   * holds a token says `no-referrer`.
   */
  referrer?: "same-origin" | "no-referrer";
  /** Extra elements in <head> (the sign-in page's meta refresh). */
  head?: Child;
}

/**
 * Every /app page's referrer policy. `same-origin`, not `no-referrer`: with
 * `no-referrer` a browser sends `Origin: null` even on a same-origin form post,
 * which the origin check (src/dashboard/csrf.ts) cannot tell from a foreign one.
 * Nothing is sent to other origins either way.
 */
export const DASHBOARD_REFERRER_POLICY = "same-origin";

/** The whole HTML document around a page. */
export const Layout: FC<PropsWithChildren<LayoutProps>> = ({ title, nav, referrer, head, children }) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <meta name="referrer" content={referrer ?? DASHBOARD_REFERRER_POLICY} />
      {head ?? null}
      <title>{`${title} · Credit Gate`}</title>
      {/* Our own constant, not data: raw, or hono/jsx would escape its quotes (font-family "Segoe UI"). */}
      <style>{raw(CSS)}</style>
    </head>
    <body>
      <header class="top">
        <span class="brand">Credit Gate</span>
        {nav ?? null}
      </header>
      <main id="main">
        <h1>{title}</h1>
        {children}
      </main>
    </body>
  </html>
);

/** A refusal or failure, as a sentence a person understands, announced to screen readers. */
export const ErrorNotice: FC<{ message: string }> = ({ message }) => (
  <div class="alert" role="alert">
    {message}
  </div>
);

const pad = (n: number): string => String(n).padStart(2, "0");

/**
 * Every date the dashboard shows: `YYYY-MM-DD HH:MM UTC`. Takes an RFC 3339
 * string, epoch milliseconds or a Date; null/undefined/unparseable → "—".
 */
export function formatDate(value: string | number | Date | null | undefined): string {
  if (value === null || value === undefined) return "—";
  const d = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(d.getTime())) return "—";
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} UTC`;
}

/**
 * A YYYY-MM-DD that names a real UTC day (not 2024-13-45 nor 2024-02-30): its
 * midnight in epoch ms; anything else → null. Every date field of a form is read with it.
 */
export function dayMs(v: string): number | null {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(v)) return null;
  const ms = Date.parse(`${v}T00:00:00Z`);
  return Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 10) !== v ? null : ms;
}

/**
 * An integer amount with thousands separators (a thin space is hard to
 * select, so a comma): 1234567 → "1,234,567", -3 → "-3". Amounts are integers
 * in the unit's smallest denomination, so no decimals.
 */
export function formatAmount(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  const sign = value < 0 ? "-" : "";
  const digits = String(Math.abs(Math.trunc(value)));
  return sign + digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/**
 * A dashboard page that cannot be served: its HTTP status and the sentence the
 * person sees (the dashboard's onError renders it in the Layout, in role="alert").
 */
export class PageError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 409 | 413 | 429 | 500 | 502 | 503,
    readonly sentence: string,
  ) {
    super(sentence);
    this.name = "PageError";
  }
}

/** An amount with its raw value, for the page and for tests: `data-field` names the API field. */
export const Num: FC<{ field: string; value: number | null | undefined }> = ({ field, value }) => (
  <span data-field={field} data-value={value === null || value === undefined ? "" : String(value)}>
    {formatAmount(value)}
  </span>
);

/** A date with its raw API value in data-value, shown by formatDate. */
export const When: FC<{ field: string; value: string | null | undefined }> = ({ field, value }) => (
  <time data-field={field} data-value={value ?? ""} {...(value ? { datetime: value } : {})}>
    {formatDate(value)}
  </time>
);
