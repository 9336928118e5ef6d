/**
 * Campaigns and codes, the way marketing uses them: configure, generate or
 * give codes, redeem (once per account and campaign, a single-use code once),
 * A/B variants assigned by the ledger's hash rule, the grant.redeemed event
 * reaching a webhook, and every change audited.
 */
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { assignVariant } from "../../src/ledger/campaign";
import {
  addCodes,
  campaignCounter,
  DAY_MS,
  keyOf,
  oneCode,
  putCampaign,
  redeem,
  redemptionRow,
} from "./campaign-helpers";
import { call, ledgerEntries, uid } from "./helpers";
import { alertsFor, drain } from "./jobs-helpers";

describe("configuring campaigns", () => {
  it("PUT creates (201) then replaces (200); GET serves it; both changes are audited", async () => {
    const id = uid("camp");
    const created = await call("PUT", `/v1/campaigns/${id}`, {
      name: "Spring",
      grant: { amount: 500, expires_in_days: 30, priority: 20 },
      starts_at: "2026-01-01T00:00:00Z",
      ends_at: "2099-01-01T00:00:00Z",
      max_redemptions: 1000,
      requires_verified: false,
    });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({
      campaign_id: id,
      name: "Spring",
      grant: { amount: 500, type: "promotional", unit: "credits", expires_in_days: 30, priority: 20 },
      variants: null,
      referrer_grant: null,
      starts_at: "2026-01-01T00:00:00.000Z",
      ends_at: "2099-01-01T00:00:00.000Z",
      max_redemptions: 1000,
      redeemed: 0,
    });
    const updated = await call("PUT", `/v1/campaigns/${id}`, {
      name: "Spring II",
      grant: { amount: 700 },
      variants: [
        { variant: "a", weight: 1 },
        { variant: "b", weight: 1, grant: { amount: 900 } },
      ],
    });
    expect(updated.status).toBe(200);
    expect(updated.json).toMatchObject({ name: "Spring II", max_redemptions: null, starts_at: null });
    expect(updated.json.variants).toEqual([
      { variant: "a", weight: 1, grant: null },
      {
        variant: "b",
        weight: 1,
        grant: { amount: 900, type: "promotional", unit: "credits", expires_in_days: null, priority: 100 },
      },
    ]);
    const got = await call("GET", `/v1/campaigns/${id}`);
    expect(got.status).toBe(200);
    expect(got.json).toEqual(updated.json);
    const audit = await call("GET", `/v1/audit?target=${id}&limit=10`);
    expect(audit.json.events.map((e: any) => e.action)).toEqual(["campaign.created", "campaign.updated"]);
    expect(audit.json.events[1].before.name).toBe("Spring");
    expect(audit.json.events[1].after.name).toBe("Spring II");
  });

  it("GET /v1/campaigns pages by id with next_cursor", async () => {
    const prefix = uid("list");
    for (const n of [1, 2, 3]) await putCampaign({}, `${prefix}-${n}`);
    const seen: string[] = [];
    let cursor = `${prefix}-0`;
    for (let i = 0; i < 3; i++) {
      const page = await call("GET", `/v1/campaigns?limit=1&cursor=${cursor}`);
      expect(page.status).toBe(200);
      expect(page.json.campaigns).toHaveLength(1);
      seen.push(page.json.campaigns[0].campaign_id);
      cursor = page.json.next_cursor;
    }
    expect(seen).toEqual([`${prefix}-1`, `${prefix}-2`, `${prefix}-3`]);
  });

  it("marketing may configure promotional campaigns within its key's limit, every grant counted", async () => {
    const key = await keyOf("marketing", 1000);
    const ok = await call(
      "PUT",
      `/v1/campaigns/${uid("camp")}`,
      { name: "M", grant: { amount: 1000 } },
      { token: key },
    );
    expect(ok.status).toBe(201);
    for (const body of [
      { name: "M", grant: { amount: 1001 } },
      { name: "M", grant: { amount: 10 }, referrer_grant: { amount: 5000 } },
      { name: "M", grant: { amount: 10 }, variants: [{ variant: "x", weight: 1, grant: { amount: 1001 } }] },
    ]) {
      const res = await call("PUT", `/v1/campaigns/${uid("camp")}`, body, { token: key });
      expect(res.status, JSON.stringify(body)).toBe(403);
      expect(res.json.code).toBe("grant_limit_exceeded");
    }
  });
});

describe("codes", () => {
  it("generated codes: single-use, 128 random bits in base32 with a prefix, all distinct; audited without the codes", async () => {
    const { id } = await putCampaign();
    const res = await call("POST", `/v1/campaigns/${id}/codes`, { count: 500 });
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({ campaign_id: id, single_use: true, created: 500 });
    const codes: string[] = res.json.codes;
    expect(codes).toHaveLength(500);
    expect(new Set(codes).size).toBe(500);
    for (const c of codes) expect(c).toMatch(/^CG-[0-9A-HJKMNP-TV-Z]{26}$/);
    const rows = await env.DB.prepare(
      "SELECT COUNT(*) AS n FROM campaign_codes WHERE campaign_id = ? AND single_use = 1",
    )
      .bind(id)
      .first<{ n: number }>();
    expect(rows?.n).toBe(500);
    const audit = await call("GET", `/v1/audit?target=${id}&action=campaign.codes_created`);
    expect(audit.json.events).toHaveLength(1);
    expect(audit.json.events[0].after).toEqual({ campaign_id: id, generated: true, single_use: true, count: 500 });
    expect(JSON.stringify(audit.json.events)).not.toContain(codes[0]);
  });

  it("10 000 generated codes in one request (the bound), inserted in D1 batches", async () => {
    const { id } = await putCampaign();
    const codes = await addCodes(id, { count: 10_000 });
    expect(new Set(codes).size).toBe(10_000);
    const rows = await env.DB.prepare("SELECT COUNT(*) AS n FROM campaign_codes WHERE campaign_id = ?")
      .bind(id)
      .first<{ n: number }>();
    expect(rows?.n).toBe(10_000);
  });

  it("1 000 given codes of 48 characters (both bounds) fit in one request under the body cap", async () => {
    const { id } = await putCampaign();
    const stem = uid("G")
      .replace(/[^A-Za-z0-9]/g, "")
      .toUpperCase();
    const codes = Array.from({ length: 1000 }, (_, i) => `${stem}-${String(i).padStart(4, "0")}`.padEnd(48, "X"));
    expect(JSON.stringify({ codes }).length).toBeLessThan(65_536);
    const res = await call("POST", `/v1/campaigns/${id}/codes`, { codes, single_use: true });
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({ single_use: true, created: 1000 });
    expect(res.json.codes).toEqual(codes);
  });

  it("given codes are multi-use by default, matched without regard to case; posting them again is harmless", async () => {
    const { id } = await putCampaign();
    const word = uid("Spring")
      .replace(/[^A-Za-z0-9-]/g, "")
      .slice(0, 40);
    const first = await call("POST", `/v1/campaigns/${id}/codes`, { codes: [word] });
    expect(first.status).toBe(201);
    expect(first.json).toMatchObject({ codes: [word.toUpperCase()], single_use: false, created: 1 });
    const again = await call("POST", `/v1/campaigns/${id}/codes`, { codes: [word] });
    expect(again.json).toMatchObject({ codes: [word.toUpperCase()], created: 0 });
    const a = uid();
    const b = uid();
    expect((await redeem(word.toLowerCase(), a)).status).toBe(201);
    expect((await redeem(word, b)).status).toBe(201);
  });
});

describe("redeeming", () => {
  it("grants the campaign's lot at once, replays the same redemption, and records it in D1", async () => {
    const { id } = await putCampaign({ grant: { amount: 500, expires_in_days: 30, priority: 7 } });
    const code = await oneCode(id);
    const a = uid();
    const before = Date.now();
    const res = await redeem(code, a);
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({
      campaign_id: id,
      variant: "default",
      grant: {
        grant_id: `campaign.${id}`,
        amount: 500,
        remaining: 500,
        type: "promotional",
        priority: 7,
        source: "campaign",
        campaign: id,
        metadata: { variant: "default", code },
        status: "active",
      },
      balance: { account_id: a, available: 500 },
    });
    const expires = Date.parse(res.json.grant.expires_at);
    expect(expires).toBeGreaterThanOrEqual(before + 30 * DAY_MS);
    expect(expires).toBeLessThanOrEqual(Date.now() + 30 * DAY_MS);
    // The unknown account was created, as a grant creates one.
    expect((await call("GET", `/v1/accounts/${a}`)).status).toBe(200);

    const replay = await redeem(code, a);
    expect(replay.status).toBe(201);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(replay.json).toEqual(res.json);
    const entries = await ledgerEntries(a);
    expect(entries.map((e) => [e.kind, e.amount, e.grant_id])).toEqual([["grant", 500, `campaign.${id}`]]);

    expect(await redemptionRow(id, a)).toMatchObject({
      code,
      variant: "default",
      status: "granted",
      grant_id: `campaign.${id}`,
    });
    expect(await campaignCounter(id)).toBe(1);
    expect((await call("GET", `/v1/campaigns/${id}`)).json.redeemed).toBe(1);
  });

  it("gateway and marketing keys may redeem; a viewer may not", async () => {
    const { id } = await putCampaign();
    const code = await oneCode(
      id,
      uid("WELCOME")
        .replace(/[^A-Za-z0-9-]/g, "")
        .slice(0, 40),
    );
    expect((await redeem(code, uid(), await keyOf("gateway"))).status).toBe(201);
    // marketing redeems within its own grant limit (the campaign grants 500; redemptions.guards pins the refusal above it).
    expect((await redeem(code, uid(), await keyOf("marketing", 500))).status).toBe(201);
    const viewer = await redeem(code, uid(), await keyOf("viewer"));
    expect(viewer.status).toBe(403);
    expect(viewer.json.code).toBe("forbidden");
  });

  it("variants: each account gets the variant the ledger's hash rule names, with that variant's grant", async () => {
    const variants = [
      { variant: "small", weight: 3, grant: { amount: 100 } },
      { variant: "large", weight: 1, grant: { amount: 1000, expires_in_days: 7 } },
    ];
    const { id } = await putCampaign({ grant: { amount: 1 }, variants });
    const code = await oneCode(
      id,
      uid("AB")
        .replace(/[^A-Za-z0-9-]/g, "")
        .slice(0, 40),
    );
    const seen = new Set<string>();
    for (let i = 0; i < 12; i++) {
      const a = uid();
      const want = assignVariant(
        id,
        a,
        variants.map((v) => ({ variant: v.variant, weight: v.weight, grant: null })),
      ).variant;
      const res = await redeem(code, a);
      expect(res.status).toBe(201);
      expect(res.json.variant).toBe(want);
      expect(res.json.grant.metadata.variant).toBe(want);
      expect(res.json.grant.amount).toBe(want === "small" ? 100 : 1000);
      expect((await redemptionRow(id, a))?.variant).toBe(want);
      seen.add(want);
    }
    expect(seen.size).toBeGreaterThan(0);
  });

  it("raises grant.redeemed (campaign, variant, account) and grant.issued carries the variant", async () => {
    const { id } = await putCampaign();
    const code = await oneCode(id);
    const a = uid();
    expect((await redeem(code, a)).status).toBe(201);
    await drain(a);
    const redeemed = await alertsFor(a, "grant.redeemed");
    expect(redeemed).toHaveLength(1);
    expect(redeemed[0]?.data).toEqual({
      campaign_id: id,
      variant: "default",
      account_id: a,
      code_kind: "single_use",
      grant_id: `campaign.${id}`,
      amount: 500,
      unit: "credits",
      referrer_account_id: null,
    });
    const issued = await alertsFor(a, "grant.issued");
    expect(issued[0]?.data).toMatchObject({
      grant_id: `campaign.${id}`,
      campaign: id,
      source: "campaign",
      variant: "default",
    });
  });

  it("a webhook subscribed to grant.redeemed receives campaign, variant and account", async () => {
    const token = uid("hook");
    const hook = await call("POST", "/v1/webhooks", {
      url: `https://hooks.example.test/hooks/${token}`,
      event_types: ["grant.redeemed"],
    });
    expect(hook.status).toBe(201);
    const { id } = await putCampaign({ variants: [{ variant: "only", weight: 5 }] });
    const code = await oneCode(id);
    const a = uid();
    expect((await redeem(code, a)).status).toBe(201);
    await drain(a);
    const delivery = await env.DB.prepare(
      "SELECT d.id FROM webhook_deliveries d JOIN alerts a ON a.id = d.alert_id WHERE a.account_id = ? AND d.webhook_id = ?",
    )
      .bind(a, hook.json.id)
      .first<{ id: string }>();
    expect(delivery).not.toBeNull();
    // Run the Worker's real queue consumer on that delivery (a repeat of the real queue's is a no-op).
    const batch = createMessageBatch("credit-gate-webhooks", [
      { id: `m-${delivery?.id}`, timestamp: new Date(), attempts: 1, body: { delivery_id: delivery?.id } },
    ]);
    const ctx = createExecutionContext();
    await worker.queue(batch as MessageBatch<unknown>, env, ctx);
    await getQueueResult(batch, ctx);
    const log = (await (await env.WEBHOOK_RECEIVER.fetch(`http://receiver/__log/${token}`)).json()) as {
      body: string;
    }[];
    expect(log.length).toBeGreaterThanOrEqual(1);
    const event = JSON.parse(log[0]?.body ?? "{}");
    expect(event.type).toBe("grant.redeemed");
    expect(event.data).toMatchObject({ campaign_id: id, variant: "only", account_id: a, grant_id: `campaign.${id}` });
    await call("DELETE", `/v1/webhooks/${hook.json.id}`);
  });

  it("requires_verified: a verified account redeems", async () => {
    const { id } = await putCampaign({ requires_verified: true });
    const code = await oneCode(id);
    const a = uid();
    await call("PUT", `/v1/accounts/${a}`, { verified: true });
    expect((await redeem(code, a)).status).toBe(201);
  });
});
