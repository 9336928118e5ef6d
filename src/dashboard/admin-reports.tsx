/**
 * /app/admin/reports (admin, finance, viewer: the API's REPORT_READERS):
 * credits issued, consumed and expired (breakage) over a window of UTC days,
 * by type, by source and by campaign, from GET /v1/reports/credits
 * (period=day, one call per dimension). Each dimension is an inline SVG bar
 * chart and a table of the window's totals (the sum over its days).
 */
import type { Hono } from "hono";
import type { Child } from "hono/jsx";
import type { AppEnv } from "../api/context";
import { DAY_MS, utcDay } from "../reports/periods";
import { BarChart } from "./admin-chart";
import { type AdminContext, adminPage, api, notForRole, operatorOf } from "./admin-frame";
import { dayMs, Num, PageError } from "./layout";

/** The window shown when none is asked for: the last this many UTC days, today included. */
export const REPORT_DEFAULT_DAYS = 30;
/** The report dimensions charted, each one API call. */
export const REPORT_DIMENSIONS = ["type", "source", "campaign"] as const;
type Dimension = (typeof REPORT_DIMENSIONS)[number];

/** What a lot without a source (or campaign) is listed as. */
export const NO_KEY = "(none)";

interface Group {
  key: string | null;
  issued: number;
  consumed: number;
  expired: number;
  voided: number;
  refunded: number;
}

interface CreditsReport {
  unit: string;
  periods: { start: string; end: string; groups: Group[] }[];
}

interface Totals {
  key: string;
  issued: number;
  consumed: number;
  expired: number;
  voided: number;
  refunded: number;
}

/** The window's totals per group key, largest issue first. */
export function totalsOf(report: CreditsReport): Totals[] {
  const by = new Map<string, Totals>();
  for (const p of report.periods) {
    for (const g of p.groups) {
      const key = g.key ?? NO_KEY;
      const t = by.get(key) ?? { key, issued: 0, consumed: 0, expired: 0, voided: 0, refunded: 0 };
      t.issued += g.issued;
      t.consumed += g.consumed;
      t.expired += g.expired;
      t.voided += g.voided;
      t.refunded += g.refunded;
      by.set(key, t);
    }
  }
  return [...by.values()].sort((a, b) => b.issued - a.issued || a.key.localeCompare(b.key));
}

/** floor(expired × 10000 / issued), 0 when nothing was issued: the report's own rule, over the window. */
export const breakageBps = (t: Totals): number => (t.issued === 0 ? 0 : Math.floor((t.expired * 10_000) / t.issued));

const UNIT = /^[a-z][a-z0-9_]{0,31}$/;
const isoDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/** A day of the query: empty → the default; a real YYYY-MM-DD → it; anything else → 400 with a sentence. */
function dayOf(c: AdminContext, name: "from" | "to", fallback: string): string {
  const v = c.req.query(name) ?? "";
  if (v === "") return fallback;
  if (dayMs(v) === null) {
    throw new PageError(
      400,
      `The ${name === "from" ? "start" : "end"} date “${v.slice(0, 40)}” is not a day of the calendar (YYYY-MM-DD). Choose another and try again.`,
    );
  }
  return v;
}

function windowOf(c: AdminContext): { from: string; to: string; unit: string } {
  const unit = c.req.query("unit") ?? "";
  const end = utcDay(Date.now()) + DAY_MS;
  return {
    from: dayOf(c, "from", isoDay(end - REPORT_DEFAULT_DAYS * DAY_MS)),
    // `to` as shown is the last day included; the API's `to` is exclusive.
    to: dayOf(c, "to", isoDay(end - DAY_MS)),
    unit: UNIT.test(unit) ? unit : "credits",
  };
}

export function reportRoutes(app: Hono<AppEnv>): void {
  app.get("/admin/reports", async (c) => {
    if (!operatorOf(c).can.reports) return notForRole(c, "Reports", "read reports");
    const w = windowOf(c);
    const toExclusive = isoDay(Date.parse(`${w.to}T00:00:00Z`) + DAY_MS);
    const results = await Promise.all(
      REPORT_DIMENSIONS.map((d) => {
        const q = new URLSearchParams({
          group_by: d,
          period: "day",
          from: `${w.from}T00:00:00Z`,
          to: `${toExclusive}T00:00:00Z`,
          unit: w.unit,
        });
        return api<CreditsReport>(c, "GET", `/v1/reports/credits?${q}`);
      }),
    );
    const refused = results.find((r) => !r.ok);
    return adminPage(
      c,
      "Reports",
      <>
        <form method="get" action="/app/admin/reports" class="filters" data-form="reports-window">
          <p>
            <label for="r-from">From (UTC day)</label>
            <input id="r-from" name="from" type="date" value={w.from} />
          </p>
          <p>
            <label for="r-to">To, included (UTC day)</label>
            <input id="r-to" name="to" type="date" value={w.to} />
          </p>
          <p>
            <label for="r-unit">Unit</label>
            <input id="r-unit" name="unit" value={w.unit} maxlength={32} />
          </p>
          <button type="submit">Show</button>
        </form>
        <p class="muted">
          Credits in {w.unit} from {w.from} to {w.to} (UTC). Reports are read from D1, a moment behind the ledger.
        </p>
        {results.map((r, i) => {
          const d = REPORT_DIMENSIONS[i] as Dimension;
          return r.ok ? <Dimension d={d} totals={totalsOf(r.body)} /> : null;
        })}
      </>,
      refused && !refused.ok ? { status: refused.status, error: refused.sentence } : {},
    );
  });
}

function Dimension(props: { d: Dimension; totals: readonly Totals[] }): Child {
  const { d, totals } = props;
  const title = `Credits by ${d}: issued, consumed and expired`;
  return (
    <section aria-labelledby={`rep-${d}`}>
      <h2 id={`rep-${d}`}>By {d}</h2>
      {totals.length === 0 ? (
        <p class="muted">Nothing issued, consumed or expired in this window.</p>
      ) : (
        <>
          <BarChart
            title={title}
            groups={totals.map((t) => ({ label: t.key, values: [t.issued, t.consumed, t.expired] }))}
          />
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th>{d}</th>
                  <th class="num">Issued</th>
                  <th class="num">Consumed</th>
                  <th class="num">Expired</th>
                  <th class="num">Voided</th>
                  <th class="num">Refunded</th>
                  <th class="num">Breakage</th>
                </tr>
              </thead>
              <tbody>
                {totals.map((t) => {
                  const f = (m: string) => `credits.${d}.${t.key}.${m}`;
                  const b = breakageBps(t);
                  return (
                    <tr>
                      <td>{t.key}</td>
                      <td class="num">
                        <Num field={f("issued")} value={t.issued} />
                      </td>
                      <td class="num">
                        <Num field={f("consumed")} value={t.consumed} />
                      </td>
                      <td class="num">
                        <Num field={f("expired")} value={t.expired} />
                      </td>
                      <td class="num">
                        <Num field={f("voided")} value={t.voided} />
                      </td>
                      <td class="num">
                        <Num field={f("refunded")} value={t.refunded} />
                      </td>
                      <td class="num">
                        <span data-field={f("breakage_bps")} data-value={String(b)}>
                          {`${Math.floor(b / 100)}.${String(b % 100).padStart(2, "0")} %`}
                        </span>
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}
