/**
 * The operator view's read-only pages, through the Worker's real fetch: each
 * opens for an admin, shows the figures the API serves (compared by their
 * data-field hooks), and shows the API's refusal of a malformed filter as a
 * sentence.
 */
import { describe, expect, it } from "vitest";
import { alertOf, fieldValue, page, signIn, textOf } from "./dashboard-admin-helpers";
import { ADMIN, call, grant, uid } from "./helpers";
import { drainVia } from "./outbox-helpers";

describe("read-only pages", () => {
  it("campaigns, alerts, reconciliation, audit and reports open for an admin and show the API's figures", async () => {
    const cookie = await signIn(ADMIN);
    const campaignId = uid("camp");
    const put = await call("PUT", `/v1/campaigns/${campaignId}`, {
      name: "Spring",
      grant: { amount: 75, type: "promotional" },
    });
    expect(put.status).toBe(201);
    const list = await page(`/app/admin/campaigns/${campaignId}`, { cookie });
    expect(list.status).toBe(200);
    expect(fieldValue(list.text, `campaign.${campaignId}.grant.amount`)).toBe("75");
    expect(fieldValue(list.text, "report.default.redeemed")).toBe("0");
    for (const path of [
      "/app/admin/campaigns",
      "/app/admin/alerts",
      "/app/admin/reconciliation",
      "/app/admin/reports",
    ]) {
      const res = await page(path, { cookie });
      expect({ path, status: res.status, alert: alertOf(res.text) }).toEqual({ path, status: 200, alert: null });
    }
    const audit = await page(`/app/admin/audit?target=${campaignId}`, { cookie });
    expect(audit.status).toBe(200);
    const events = (await call("GET", `/v1/audit?target=${campaignId}`)).json.events;
    expect(events.length).toBeGreaterThan(0);
    expect(textOf(audit.text, `audit.${events[0].id}.action`)).toBe(events[0].action);
    expect(textOf(audit.text, `audit.${events[0].id}.actor`)).toBe("admin-token:admin");
    // A malformed filter is the API's refusal, as a sentence.
    const bad = await page("/app/admin/audit?action=nope", { cookie });
    expect(bad.status).toBe(400);
    expect(alertOf(bad.text)).toMatch(/^The request was not accepted/);
  });

  it("the reports chart each dimension with the window's totals, figures worked out by hand", async () => {
    // A unit of its own, so no other suite's lots are in these figures.
    const unit = `u${Math.random().toString(36).slice(2, 10)}`;
    const campaign = uid("rc");
    const a1 = uid("rep");
    const a2 = uid("rep");
    await grant(a1, { amount: 300, unit, type: "promotional", source: "marketing", campaign });
    await grant(a2, { amount: 200, unit, type: "promotional", source: "marketing", campaign });
    await grant(a2, { amount: 1000, unit, type: "purchased", source: "checkout" });
    expect((await call("POST", `/v1/accounts/${a2}/debits`, { debit_id: uid("d"), amount: 250, unit })).status).toBe(
      200,
    );
    for (const id of [a1, a2]) expect((await drainVia(id)).ok).toBe(true);
    const cookie = await signIn(ADMIN);
    const res = await page(`/app/admin/reports?unit=${unit}`, { cookie });
    expect(res.status).toBe(200);
    expect((res.text.match(/<svg/g) ?? []).length).toBe(3);
    // Promotional is drawn first by the default type order: the 250 come from a2's promotional 200 and 50 purchased.
    const want: Record<string, string> = {
      "credits.type.promotional.issued": "500",
      "credits.type.promotional.consumed": "200",
      "credits.type.purchased.issued": "1000",
      "credits.type.purchased.consumed": "50",
      "credits.type.compensatory.issued": "",
      "credits.source.marketing.issued": "500",
      "credits.source.checkout.issued": "1000",
      [`credits.campaign.${campaign}.issued`]: "500",
      [`credits.campaign.${campaign}.consumed`]: "200",
      "credits.campaign.(none).issued": "1000",
      "credits.type.promotional.breakage_bps": "0",
    };
    for (const [f, v] of Object.entries(want)) {
      expect({ f, v: fieldValue(res.text, f) ?? "" }).toEqual({ f, v });
    }
    const bad = await page("/app/admin/reports?from=2020-01-01&to=2024-01-01", { cookie });
    expect(bad.status).toBe(400);
    expect(alertOf(bad.text)).toMatch(/periods/);
  });
});
