/**
 * Issue 8, the audit log: every change that is not a ledger entry writes one
 * row naming the caller's actor, the action, the target, the resource before
 * and after, and the request id; GET /v1/audit pages through them in id
 * order and filters them by exact actor, action and target.
 */
import { env } from "cloudflare:workers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AUDIT_SNAPSHOT_MAX_BYTES } from "../../src/db/audit";
import { call, type Res, uid } from "./helpers";

/** At most this many pages are followed: a paging bug fails the test instead of looping. */
const MAX_PAGES = 500;

/** Every event matching `query`, page by page (limit 1000). */
async function allEvents(query = ""): Promise<any[]> {
  const out: any[] = [];
  let after = 0;
  for (let page = 0; page < MAX_PAGES; page++) {
    const res = await call("GET", `/v1/audit?limit=1000&after=${after}${query ? `&${query}` : ""}`);
    expect(res.status, res.text).toBe(200);
    out.push(...res.json.events);
    if (res.json.next_after === null) return out;
    after = res.json.next_after;
  }
  throw new Error("too many pages");
}

/** The one event the request with this id wrote (fails when there is none, or more than one). */
async function eventOf(requestId: string, target: string): Promise<any> {
  const rows = (await allEvents(`target=${encodeURIComponent(target)}`)).filter((e) => e.request_id === requestId);
  expect(rows, `events of ${requestId}`).toHaveLength(1);
  return rows[0];
}

/** A call that sends its own x-request-id, returned alongside the response. */
async function tagged(method: string, path: string, body?: unknown, token?: string): Promise<[Res, string]> {
  const requestId = uid("audit-req");
  const res = await call(method, path, body, { headers: { "x-request-id": requestId }, token });
  expect(res.headers.get("x-request-id")).toBe(requestId);
  return [res, requestId];
}

let finance: { id: string; token: string; actor: string };
let originalPolicy: Record<string, unknown>;
let originalAlertSettings: Record<string, unknown>;

beforeAll(async () => {
  const key = await call("POST", "/v1/api-keys", { name: uid("audit-finance"), role: "finance" });
  expect(key.status).toBe(201);
  finance = { id: key.json.id, token: key.json.key, actor: `${key.json.id}:finance` };
  originalPolicy = (await call("GET", "/v1/policy")).json;
  originalAlertSettings = (await call("GET", "/v1/alert-settings")).json;
});

afterAll(async () => {
  await call("PUT", "/v1/policy", originalPolicy);
  await call("PUT", "/v1/alert-settings", originalAlertSettings);
});

describe("each audited change writes one row", () => {
  it("account.created and account.updated, by the caller that made them, with before and after", async () => {
    const a = uid("audit-acct");
    const [created, createdReq] = await tagged("PUT", `/v1/accounts/${a}`, { name: "Acme" }, finance.token);
    expect(created.status).toBe(201);
    const first = await eventOf(createdReq, a);
    expect(first).toEqual({
      id: expect.any(Number),
      at: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/),
      actor: finance.actor,
      action: "account.created",
      target: a,
      before: null,
      after: created.json,
      request_id: createdReq,
    });

    const [updated, updatedReq] = await tagged("PUT", `/v1/accounts/${a}`, { verified: true }, finance.token);
    expect(updated.status).toBe(200);
    const second = await eventOf(updatedReq, a);
    expect(second).toMatchObject({
      actor: finance.actor,
      action: "account.updated",
      before: created.json,
      after: updated.json,
    });
    expect(second.id).toBeGreaterThan(first.id);
    expect(Date.parse(second.at)).toBeGreaterThanOrEqual(Date.parse(first.at));
  });

  it("account_policy.updated: the effective policy before and after the override", async () => {
    const a = uid("audit-acct");
    expect((await call("PUT", `/v1/accounts/${a}`, {})).status).toBe(201);
    const before = (await call("GET", `/v1/accounts/${a}/policy`)).json;
    const [put, req] = await tagged("PUT", `/v1/accounts/${a}/policy`, { hold_on_expiry: "capture" }, finance.token);
    expect(put.status).toBe(200);
    expect(await eventOf(req, a)).toMatchObject({
      actor: finance.actor,
      action: "account_policy.updated",
      target: a,
      before,
      after: { ...before, hold_on_expiry: "capture" },
      request_id: req,
    });
  });

  it.each([
    // [path, target, action, a patch that changes the current value]
    [
      "/v1/policy",
      "policy",
      "policy.updated",
      (p: any) => ({ require_verified_for_promotional: !p.require_verified_for_promotional }),
    ],
    [
      "/v1/alert-settings",
      "alert_settings",
      "alert_settings.updated",
      (s: any) => ({ spike_factor: s.spike_factor === 7 ? 8 : 7 }),
    ],
  ])("PUT %s: one row for target %s, with the settings before and after", async (path, target, action, change) => {
    const before = (await call("GET", path)).json;
    const patch = change(before);
    const [put, req] = await tagged("PUT", path, patch);
    expect(put.status).toBe(200);
    expect(await eventOf(req, target)).toMatchObject({
      actor: "admin-token:admin",
      action,
      before,
      after: { ...before, ...patch },
    });
  });

  it("webhook.created and webhook.deleted, without the secret; deleting again writes nothing", async () => {
    const [created, createdReq] = await tagged("POST", "/v1/webhooks", {
      url: "https://hooks.example/audit",
      event_types: ["balance.low"],
      description: "audit",
    });
    expect(created.status).toBe(201);
    const { secret, ...view } = created.json;
    expect(await eventOf(createdReq, view.id)).toMatchObject({
      action: "webhook.created",
      actor: "admin-token:admin",
      before: null,
      after: view,
    });

    const [deleted, deletedReq] = await tagged("DELETE", `/v1/webhooks/${view.id}`);
    expect(deleted.status).toBe(200);
    expect(await eventOf(deletedReq, view.id)).toMatchObject({
      action: "webhook.deleted",
      before: view,
      after: deleted.json,
    });
    expect(deleted.json.deleted_at).toEqual(expect.any(String));

    expect((await call("DELETE", `/v1/webhooks/${view.id}`)).status).toBe(200);
    const rows = await allEvents(`target=${view.id}`);
    expect(rows.map((e) => e.action)).toEqual(["webhook.created", "webhook.deleted"]);
    expect(JSON.stringify(rows)).not.toContain(secret);
  });

  it("a snapshot over 8 KB keeps the fields that fit and names the rest, with the size and hash of the whole", async () => {
    const a = uid("audit-big");
    const metadata: Record<string, string> = {};
    for (let i = 0; i < 32; i++) metadata[`k${String(i).padStart(2, "0")}${"x".repeat(60)}`] = "v".repeat(512);
    const [put, req] = await tagged("PUT", `/v1/accounts/${a}`, { name: "big", metadata });
    expect(put.status).toBe(201);
    const event = await eventOf(req, a);
    expect(event.after).toMatchObject({
      account_id: a,
      name: "big",
      _truncated: { bytes: expect.any(Number), sha256: expect.stringMatching(/^[0-9a-f]{64}$/), dropped: ["metadata"] },
    });
    expect(event.after.metadata).toBeUndefined();
    expect(event.after._truncated.bytes).toBeGreaterThan(AUDIT_SNAPSHOT_MAX_BYTES);
    const stored = await env.DB.prepare("SELECT length(CAST(after AS BLOB)) AS n FROM audit_events WHERE id = ?")
      .bind(event.id)
      .first<{ n: number }>();
    expect(stored?.n).toBeLessThanOrEqual(AUDIT_SNAPSHOT_MAX_BYTES);
  });
});

describe("GET /v1/audit", () => {
  it("pages with limit=2 visit every event once, in id order", async () => {
    // Enough events for several pages.
    for (let i = 0; i < 5; i++) expect((await call("PUT", `/v1/accounts/${uid("audit-page")}`, {})).status).toBe(201);
    const everything = (await allEvents()).map((e) => e.id);
    expect(everything.length).toBeGreaterThanOrEqual(5);
    const seen: number[] = [];
    let after: number | null = 0;
    for (let page = 0; after !== null && page < MAX_PAGES; page++) {
      const res = await call("GET", `/v1/audit?limit=2&after=${after}`);
      expect(res.status).toBe(200);
      expect(res.json.events.length).toBeLessThanOrEqual(2);
      seen.push(...res.json.events.map((e: any) => e.id));
      after = res.json.next_after;
      if (after !== null) expect(after).toBe(res.json.events[res.json.events.length - 1].id);
    }
    expect(after).toBeNull();
    expect(seen).toEqual(everything);
    expect([...seen].sort((x, y) => x - y)).toEqual(seen);
    expect(new Set(seen).size).toBe(seen.length);
  });

  it("without limit serves at most 100, and next_after is null on the last page", async () => {
    const res = await call("GET", "/v1/audit");
    expect(res.status).toBe(200);
    expect(res.json.events.length).toBeLessThanOrEqual(100);
    const last = await call("GET", `/v1/audit?after=999999999999999`);
    expect(last.json).toEqual({ events: [], next_after: null });
  });

  it("filters by exact actor, action and target, alone and together", async () => {
    const a = uid("audit-filter");
    expect((await call("PUT", `/v1/accounts/${a}`, { name: "f" }, { token: finance.token })).status).toBe(201);
    expect((await call("PUT", `/v1/accounts/${a}`, { name: "g" })).status).toBe(200);
    expect(
      (await call("PUT", `/v1/accounts/${a}/policy`, { order: ["created"] }, { token: finance.token })).status,
    ).toBe(200);

    const byActor = await allEvents(`actor=${encodeURIComponent(finance.actor)}`);
    expect(byActor.length).toBeGreaterThanOrEqual(2);
    expect(byActor.every((e) => e.actor === finance.actor)).toBe(true);

    const byAction = await allEvents("action=account.updated");
    expect(byAction.length).toBeGreaterThanOrEqual(1);
    expect(byAction.every((e) => e.action === "account.updated")).toBe(true);

    expect((await allEvents(`target=${a}`)).map((e) => [e.action, e.actor])).toEqual([
      ["account.created", finance.actor],
      ["account.updated", "admin-token:admin"],
      ["account_policy.updated", finance.actor],
    ]);
    const together = await allEvents(`target=${a}&actor=${encodeURIComponent(finance.actor)}&action=account.created`);
    expect(together.map((e) => e.action)).toEqual(["account.created"]);
    expect(await allEvents(`target=${a}&action=webhook.created`)).toEqual([]);
    // Exact match only: a prefix of the target finds nothing.
    expect(await allEvents(`target=${a.slice(0, -1)}`)).toEqual([]);
  });

  it("finance reads the log as admin does, and an API key's actor is its id and role", async () => {
    const res = await call("GET", `/v1/audit?actor=${encodeURIComponent(finance.actor)}&limit=1`, undefined, {
      token: finance.token,
    });
    expect(res.status).toBe(200);
    expect(res.json.events).toHaveLength(1);
    expect(res.json.events[0].actor).toBe(finance.actor);
  });
});
