import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { AccountLedger } from "../../src/account/account-do";
import { loadGlobalPolicy } from "../../src/db/settings";
import { advanceClock, balance, call, debit, grant, iso, ledgerEntries, ledgerStubFor, uid } from "./helpers";

const hold = (a: string, body: Record<string, unknown>) =>
  call("POST", `/v1/accounts/${a}/holds`, { hold_id: uid("h"), ...body });
const capture = (a: string, h: string, body?: Record<string, unknown>) =>
  call("POST", `/v1/accounts/${a}/holds/${h}/capture`, body);
const release = (a: string, h: string) => call("POST", `/v1/accounts/${a}/holds/${h}/release`);
const refEntries = async (a: string, ref: string) =>
  (await ledgerEntries(a)).filter((e) => e.ref === ref).map((e) => [e.kind, e.amount, e.held_delta]);

describe("holds happy path", () => {
  it("a hold counts in `held`, not `available`; other spending cannot touch it", async () => {
    const a = uid();
    await grant(a, { amount: 100 });
    const res = await hold(a, { hold_id: "h-1", amount: 30, ttl_seconds: 120 });
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({ hold_id: "h-1", amount: 30, status: "open" });
    expect(res.json.applied).toEqual([{ grant_id: expect.any(String), type: "purchased", amount: 30 }]);
    expect(res.json.balance).toMatchObject({ available: 70, held: 30, by_type: { purchased: 100 } });
    expect(Date.parse(res.json.expires_at) - Date.now()).toBeGreaterThan(110_000);

    expect((await debit(a, 71)).json).toMatchObject({ code: "insufficient_credits", available: 70, requested: 71 });
    expect((await debit(a, 70)).status).toBe(200);
    expect(await balance(a)).toMatchObject({ available: 0, held: 30 });
    const status = await call("GET", `/v1/accounts/${a}/holds/h-1`);
    expect(status.json).toMatchObject({ hold_id: "h-1", status: "open", amount: 30, captured: 0, released: 0 });
  });

  it("reserves lots in policy order", async () => {
    const a = uid();
    await grant(a, { grant_id: "later", amount: 100, priority: 200 });
    await grant(a, { grant_id: "first", amount: 100, priority: 10 });
    const res = await hold(a, { amount: 150 });
    expect(res.json.applied).toEqual([
      { grant_id: "first", type: "purchased", amount: 100 },
      { grant_id: "later", type: "purchased", amount: 50 },
    ]);
    const grants = (await call("GET", `/v1/accounts/${a}/grants`)).json.grants;
    expect(grants.map((g: any) => [g.grant_id, g.remaining, g.held])).toEqual([
      ["later", 100, 50],
      ["first", 100, 100],
    ]);
  });

  it("a partial capture captures that much and releases the rest", async () => {
    const a = uid();
    await grant(a, { amount: 100 });
    await hold(a, { hold_id: "h-cap", amount: 30 });
    const res = await capture(a, "h-cap", { amount: 10 });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ hold_id: "h-cap", status: "captured", captured: 10, released: 20 });
    expect(res.json.balance).toMatchObject({ available: 90, held: 0 });
    expect(await refEntries(a, "h-cap")).toEqual([
      ["hold", 0, 30],
      ["hold.captured", -10, -10],
      ["hold.released", 0, -20],
    ]);
  });

  it("capture with no body captures everything held", async () => {
    const a = uid();
    await grant(a, { amount: 100 });
    await hold(a, { hold_id: "h-all", amount: 45 });
    const res = await capture(a, "h-all");
    expect(res.json).toMatchObject({
      status: "captured",
      captured: 45,
      released: 0,
      balance: { available: 55, held: 0 },
    });
  });

  it("release gives everything back", async () => {
    const a = uid();
    await grant(a, { amount: 100 });
    await hold(a, { hold_id: "h-rel", amount: 60 });
    const res = await release(a, "h-rel");
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ hold_id: "h-rel", status: "released", released: 60 });
    expect(res.json.balance).toMatchObject({ available: 100, held: 0 });
    expect(await refEntries(a, "h-rel")).toEqual([
      ["hold", 0, 60],
      ["hold.released", 0, -60],
    ]);
  });

  it("repeating the same close returns the first result and moves nothing", async () => {
    const a = uid();
    await grant(a, { amount: 100 });
    await hold(a, { hold_id: "h-c", amount: 30 });
    await hold(a, { hold_id: "h-r", amount: 30 });
    const c1 = await capture(a, "h-c", { amount: 5 });
    const c2 = await capture(a, "h-c", { amount: 5 });
    expect(c2.status).toBe(200);
    expect(c2.headers.get("idempotent-replayed")).toBe("true");
    expect(c2.json).toEqual(c1.json);
    const r1 = await release(a, "h-r");
    const r2 = await release(a, "h-r");
    expect(r2.headers.get("idempotent-replayed")).toBe("true");
    expect(r2.json).toEqual(r1.json);
    expect(await balance(a)).toMatchObject({ available: 95, held: 0 });
    expect((await ledgerEntries(a)).length).toBe(1 + 2 + 2 + 1);
  });

  it("the same hold_id and body replays the creation; the Idempotency-Key header works too", async () => {
    const a = uid();
    await grant(a, { amount: 100 });
    const first = await hold(a, { hold_id: "h-idem", amount: 10 });
    const again = await hold(a, { hold_id: "h-idem", amount: 10 });
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.json).toEqual(first.json);
    const viaHeader = await call(
      "POST",
      `/v1/accounts/${a}/holds`,
      { amount: 5 },
      { headers: { "idempotency-key": "h-header" } },
    );
    expect(viaHeader.json).toMatchObject({ hold_id: "h-header", status: "open" });
    expect(await balance(a)).toMatchObject({ available: 85, held: 15 });
  });

  it("past its deadline the sweep releases an open hold (hold_on_expiry: release, the default)", async () => {
    const a = uid();
    await grant(a, { amount: 100 });
    await hold(a, { hold_id: "h-exp", amount: 40, ttl_seconds: 60 });
    const stub = ledgerStubFor(a);
    await advanceClock(a, 59_000);
    await runInDurableObject(stub, async (inst: AccountLedger) => {
      expect(inst.expireAndSweep(await loadGlobalPolicy(env.DB))).toEqual({ expired: 0, swept: 0 });
    });
    expect(await balance(a)).toMatchObject({ available: 60, held: 40 });
    await advanceClock(a, 2_000);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await balance(a)).toMatchObject({ available: 100, held: 0 });
    const status = await call("GET", `/v1/accounts/${a}/holds/h-exp`);
    expect(status.json).toMatchObject({ status: "released", captured: 0, released: 40 });
    const swept = (await ledgerEntries(a)).filter((e) => e.ref === "h-exp");
    expect(swept.at(-1)).toMatchObject({ kind: "hold.released", amount: 0, held_delta: -40, actor: "system:sweep" });
    // A second sweep at the same time is a no-op.
    await runInDurableObject(stub, async (inst: AccountLedger) => {
      expect(inst.expireAndSweep(await loadGlobalPolicy(env.DB))).toEqual({ expired: 0, swept: 0 });
    });
    // The client's own release now answers as the sweep's did and moves nothing;
    // capturing is the other close.
    const entriesBefore = await ledgerEntries(a);
    const release = await call("POST", `/v1/accounts/${a}/holds/h-exp/release`);
    expect(release.status).toBe(200);
    expect(release.json).toMatchObject({
      hold_id: "h-exp",
      status: "released",
      released: 40,
      balance: { available: 100 },
    });
    expect(release.headers.get("idempotent-replayed")).toBe("true");
    expect((await capture(a, "h-exp")).json.code).toBe("hold_closed");
    expect(await ledgerEntries(a)).toEqual(entriesBefore);
  });

  it("with hold_on_expiry: capture (account policy) the sweep captures the hold in full", async () => {
    const a = uid();
    await grant(a, { amount: 100 });
    const put = await call("PUT", `/v1/accounts/${a}/policy`, { hold_on_expiry: "capture" });
    expect(put.json.hold_on_expiry).toBe("capture");
    await hold(a, { hold_id: "h-auto", amount: 40, ttl_seconds: 30 });
    await advanceClock(a, 31_000);
    expect(await runDurableObjectAlarm(ledgerStubFor(a))).toBe(true);
    expect(await balance(a)).toMatchObject({ available: 60, held: 0 });
    const status = await call("GET", `/v1/accounts/${a}/holds/h-auto`);
    expect(status.json).toMatchObject({ status: "captured", captured: 40, released: 0 });
    expect(await refEntries(a, "h-auto")).toEqual([
      ["hold", 0, 40],
      ["hold.captured", -40, -40],
    ]);
  });

  it("a lot that expires while held stays capturable for that hold; its unheld rest expires", async () => {
    const a = uid();
    const g = await grant(a, { grant_id: "g-short", amount: 100, expires_at: iso(Date.now() + 120_000) });
    expect(g.grant.expires_at).toBeTruthy();
    await hold(a, { hold_id: "h-long", amount: 60, ttl_seconds: 3600 });
    await advanceClock(a, 130_000);
    expect(await runDurableObjectAlarm(ledgerStubFor(a))).toBe(true);
    // The unheld 40 expired; the held 60 is still reserved for the hold.
    expect(await balance(a)).toMatchObject({ available: 0, held: 60 });
    const expired = (await ledgerEntries(a)).filter((e) => e.kind === "grant.expired");
    expect(expired).toEqual([expect.objectContaining({ amount: -40, held_delta: 0, grant_id: "g-short" })]);
    expect(expired[0].effective_at).toBe(g.grant.expires_at);

    const res = await capture(a, "h-long", { amount: 50 });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ status: "captured", captured: 50, released: 10 });
    expect(res.json.balance).toMatchObject({ available: 0, held: 0 });
    // The released 10 landed in an expired lot and left again at once.
    const entries = await ledgerEntries(a);
    expect(entries.slice(-3).map((e) => [e.kind, e.amount, e.held_delta])).toEqual([
      ["hold.captured", -50, -50],
      ["hold.released", 0, -10],
      ["grant.expired", -10, 0],
    ]);
    expect(entries.reduce((s, e) => s + e.amount, 0)).toBe(0);
    expect(entries.reduce((s, e) => s + e.held_delta, 0)).toBe(0);
  });
});
