/**
 * /app/admin/campaigns and /app/admin/campaigns/{id}: the campaigns (GET
 * /v1/campaigns, all reads) and, for the roles that may read it (admin,
 * finance, viewer, marketing), one campaign's report per variant (GET
 * /v1/reports/campaigns/{id}).
 */
import type { Hono } from "hono";
import type { Child } from "hono/jsx";
import type { AppEnv } from "../api/context";
import { adminPage, api, idParam, operatorOf, refusedPage, seg } from "./admin-frame";
import { Num, When } from "./layout";

/** One page of the campaign list (the API's CAMPAIGNS_PAGE_MAX is 100). */
export const ADMIN_CAMPAIGNS_PAGE = 50;

interface Campaign {
  campaign_id: string;
  name: string;
  grant: { amount: number; unit: string; expires_in_days: number | null };
  variants: { variant: string; weight: number }[] | null;
  starts_at: string | null;
  ends_at: string | null;
  max_redemptions: number | null;
  redeemed: number;
  created_at: string;
}

interface Report {
  campaign_id: string;
  unit: string;
  variants: {
    variant: string;
    redeemed: number;
    issued: number;
    consumed: number;
    expired: number;
    converted: number;
    conversion_bps: number;
    breakage_bps: number;
  }[];
}

const CURSOR = /^[A-Za-z0-9._:-]{1,128}$/;

export function campaignRoutes(app: Hono<AppEnv>): void {
  app.get("/admin/campaigns", async (c) => {
    const cursor = c.req.query("cursor") ?? "";
    const q = new URLSearchParams({ limit: String(ADMIN_CAMPAIGNS_PAGE) });
    if (CURSOR.test(cursor)) q.set("cursor", cursor);
    const res = await api<{ campaigns: Campaign[]; next_cursor: string | null }>(c, "GET", `/v1/campaigns?${q}`);
    if (!res.ok) return refusedPage(c, "Campaigns", res);
    return adminPage(
      c,
      "Campaigns",
      <>
        {res.body.campaigns.length === 0 ? <p class="muted">No campaigns yet.</p> : <List rows={res.body.campaigns} />}
        {res.body.next_cursor ? (
          <nav class="pager" aria-label="Campaign pages">
            <a href={`/app/admin/campaigns?cursor=${seg(res.body.next_cursor)}`}>More</a>
          </nav>
        ) : null}
      </>,
    );
  });
  app.get("/admin/campaigns/:campaign_id", async (c) => {
    const id = idParam(c, "campaign_id");
    const title = `Campaign ${id}`;
    const can = operatorOf(c).can;
    const [one, report] = await Promise.all([
      api<Campaign>(c, "GET", `/v1/campaigns/${seg(id)}`),
      can.campaignReport ? api<Report>(c, "GET", `/v1/reports/campaigns/${seg(id)}`) : Promise.resolve(null),
    ]);
    if (!one.ok) return refusedPage(c, title, one);
    return adminPage(
      c,
      title,
      <>
        <List rows={[one.body]} />
        <h2>Report</h2>
        {report === null ? (
          <p class="muted">Your key's role may not read campaign reports.</p>
        ) : report.ok ? (
          <ReportTable r={report.body} />
        ) : (
          <p class="muted">{report.sentence}</p>
        )}
      </>,
    );
  });
}

function List(props: { rows: readonly Campaign[] }): Child {
  return (
    <div class="table-wrap">
      <table>
        <thead>
          <tr>
            <th>Campaign</th>
            <th>Name</th>
            <th class="num">Grant</th>
            <th class="num">Redeemed</th>
            <th class="num">Max</th>
            <th>Starts</th>
            <th>Ends</th>
          </tr>
        </thead>
        <tbody>
          {props.rows.map((k) => {
            const f = (m: string) => `campaign.${k.campaign_id}.${m}`;
            return (
              <tr>
                <td>
                  <a href={`/app/admin/campaigns/${seg(k.campaign_id)}`}>{k.campaign_id}</a>
                </td>
                <td>{k.name}</td>
                <td class="num">
                  <Num field={f("grant.amount")} value={k.grant.amount} /> {k.grant.unit}
                </td>
                <td class="num">
                  <Num field={f("redeemed")} value={k.redeemed} />
                </td>
                <td class="num">
                  {k.max_redemptions === null ? (
                    <span data-field={f("max_redemptions")} data-value="">
                      none
                    </span>
                  ) : (
                    <Num field={f("max_redemptions")} value={k.max_redemptions} />
                  )}
                </td>
                <td>
                  <When field={f("starts_at")} value={k.starts_at} />
                </td>
                <td>
                  <When field={f("ends_at")} value={k.ends_at} />
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

/** Basis points as a percentage with two decimals (1234 → "12.34 %"); the raw value is in data-value. */
const bps = (field: string, v: number): Child => (
  <span data-field={field} data-value={String(v)}>
    {`${Math.floor(v / 100)}.${String(v % 100).padStart(2, "0")} %`}
  </span>
);

function ReportTable(props: { r: Report }): Child {
  return (
    <div class="table-wrap">
      <table>
        <thead>
          <tr>
            <th>Variant</th>
            <th class="num">Redeemed</th>
            <th class="num">Issued ({props.r.unit})</th>
            <th class="num">Consumed</th>
            <th class="num">Expired</th>
            <th class="num">Converted</th>
            <th class="num">Conversion</th>
            <th class="num">Breakage</th>
          </tr>
        </thead>
        <tbody>
          {props.r.variants.map((v) => {
            const f = (m: string) => `report.${v.variant}.${m}`;
            return (
              <tr>
                <td>{v.variant}</td>
                <td class="num">
                  <Num field={f("redeemed")} value={v.redeemed} />
                </td>
                <td class="num">
                  <Num field={f("issued")} value={v.issued} />
                </td>
                <td class="num">
                  <Num field={f("consumed")} value={v.consumed} />
                </td>
                <td class="num">
                  <Num field={f("expired")} value={v.expired} />
                </td>
                <td class="num">
                  <Num field={f("converted")} value={v.converted} />
                </td>
                <td class="num">{bps(f("conversion_bps"), v.conversion_bps)}</td>
                <td class="num">{bps(f("breakage_bps"), v.breakage_bps)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
