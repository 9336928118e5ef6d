/**
 * GET /v1/metrics: the exposition parses strictly, and the counters move by
 * exactly the hand-counted amounts of a scripted history (grants, debits, a
 * refused debit, a hold captured in part, an expiry), once, even when a
 * shipment is sent again.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { AccountLedger } from "../../src/account/account-do";
import { labelsOf } from "../../src/metrics/names";
import { advanceClock, call, debit, expectProblem, grant, ledgerStubFor, runAlarm, uid } from "./helpers";
import { parseExposition, sampleOf } from "./metrics-helpers";

const MINUTE = 60_000;

async function scrape() {
  const res = await call("GET", "/v1/metrics");
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4");
  return parseExposition(res.text);
}

/** A unit no other test uses, so its series start at zero. */
const freshUnit = () => `m${Math.random().toString(36).slice(2, 10)}`;

/** Closes the account's open minute on its clock and runs its alarm (the metrics job ships what closed). */
async function closeMinute(accountId: string): Promise<void> {
  await advanceClock(accountId, MINUTE + 1000);
  await runAlarm(accountId);
}

/** Moves the account's clock to just after the start of a minute, so a short test never straddles two. */
async function alignClock(accountId: string): Promise<void> {
  await runInDurableObject(ledgerStubFor(accountId), (inst: AccountLedger) => {
    inst.clock.offsetMs += MINUTE - ((Date.now() + inst.clock.offsetMs) % MINUTE) + 50;
  });
}

const pendingOf = (accountId: string) =>
  runInDurableObject(ledgerStubFor(accountId), (inst: AccountLedger) => inst.metrics.pending());

describe("GET /v1/metrics", () => {
  it("serves every family with HELP and TYPE, the contract's counters and gauges among them", async () => {
    const p = await scrape();
    for (const name of ["creditgate_entries_total", "creditgate_denials_total"]) {
      expect(p.families.get(name)?.type).toBe("counter");
    }
    for (const name of ["creditgate_outbox_lag_entries", "creditgate_reconciliation_drift_accounts"]) {
      expect(p.families.get(name)?.type).toBe("gauge");
    }
    for (const f of p.families.values()) expect(f.help.length).toBeGreaterThan(10);
    expect(sampleOf(p, "creditgate_metrics_truncated")).toBe(0);
  });

  it("counts a scripted history exactly: entries by kind and unit, amounts, a 402 denial", async () => {
    const a = uid();
    const unit = freshUnit();
    const other = freshUnit();
    await alignClock(a);
    const before = await scrape();
    const deniedBefore = sampleOf(before, "creditgate_denials_total", { code: "insufficient_credits" });
    expect(sampleOf(before, "creditgate_entries_total", { kind: "grant", unit })).toBe(0);

    await grant(a, { amount: 100, unit });
    await grant(a, { amount: 50, unit });
    // In a unit of its own, so the debits and the hold never touch it: all 10 expire.
    // Expiring 30 s from now on the account's clock (alignClock moved it ahead): before the first minute closes.
    const offset = await runInDurableObject(ledgerStubFor(a), (inst: AccountLedger) => inst.clock.offsetMs);
    await grant(a, { amount: 10, unit: other, expires_at: new Date(Date.now() + offset + 30_000).toISOString() });
    expect((await debit(a, 30, { unit })).status).toBe(200);
    expectProblem(await debit(a, 1000, { unit }), 402, "insufficient_credits");
    const hold = await call("POST", `/v1/accounts/${a}/holds`, { hold_id: uid("h"), amount: 20, unit });
    expect(hold.status).toBe(201);
    const captured = await call("POST", `/v1/accounts/${a}/holds/${hold.json.hold_id}/capture`, { amount: 15 });
    expect(captured.status).toBe(200);

    // Nothing ships while the minute is open.
    await runAlarm(a);
    expect(sampleOf(await scrape(), "creditgate_entries_total", { kind: "grant", unit })).toBe(0);

    await closeMinute(a); // ships the first minute; the clock is past the expiry, so the alarm writes grant.expired
    await closeMinute(a); // ...whose minute closes and ships here
    expect(await pendingOf(a)).toBe(0);

    const p = await scrape();
    const entries = (kind: string, u = unit) => sampleOf(p, "creditgate_entries_total", { kind, unit: u });
    const amount = (kind: string, u = unit) => sampleOf(p, "creditgate_entry_amount_total", { kind, unit: u });
    // By hand: two grants (100 + 50) in `unit`; the debit of 30 fits in one lot (one entry); the hold of 20 too
    // (one entry, amount 0: it moves held_delta); its capture of 15 writes a capture entry and a release of the 5.
    expect([entries("grant"), amount("grant")]).toEqual([2, 150]);
    expect([entries("debit"), amount("debit")]).toEqual([1, 30]);
    expect([entries("hold"), amount("hold")]).toEqual([1, 0]);
    expect([entries("hold.captured"), amount("hold.captured")]).toEqual([1, 15]);
    expect([entries("hold.released"), amount("hold.released")]).toEqual([1, 0]);
    // The other unit: a grant of 10, then its expiry of all 10.
    expect([entries("grant", other), amount("grant", other)]).toEqual([1, 10]);
    expect([entries("grant.expired", other), amount("grant.expired", other)]).toEqual([1, 10]);
    expect(sampleOf(p, "creditgate_denials_total", { code: "insufficient_credits" })).toBe(deniedBefore + 1);
    // The ledger agrees, entry for entry.
    const ledger = (await call("GET", `/v1/accounts/${a}/ledger?limit=100`)).json.entries as {
      kind: string;
      unit: string;
    }[];
    expect(ledger.length).toBe(8); // 2 + 1 + 1 + 1 + 1 in `unit`, 2 in `other`
    for (const e of ledger)
      expect(entries(e.kind, e.unit)).toBe(ledger.filter((x) => x.kind === e.kind && x.unit === e.unit).length);
  });

  it("a shipment sent again counts once", async () => {
    const a = uid();
    const unit = freshUnit();
    await alignClock(a);
    await grant(a, { amount: 10, unit });
    await debit(a, 3, { unit });
    await debit(a, 4, { unit });
    const stub = ledgerStubFor(a);
    const rows = await runInDurableObject(stub, (_inst: AccountLedger, state) =>
      state.storage.sql.exec("SELECT minute_ms, name, labels, value FROM metric_counts").toArray(),
    );
    expect(rows.length).toBe(4); // grant and debit, each with a count and an amount series
    await closeMinute(a);
    const first = await scrape();
    expect(sampleOf(first, "creditgate_entries_total", { kind: "debit", unit })).toBe(2);
    expect(sampleOf(first, "creditgate_entry_amount_total", { kind: "debit", unit })).toBe(7);
    // As if the rows had survived a crash after D1 committed: the same minute rows ship again.
    await runInDurableObject(stub, async (inst: AccountLedger, state) => {
      for (const r of rows) {
        state.storage.sql.exec(
          "INSERT INTO metric_counts (minute_ms, name, labels, value) VALUES (?, ?, ?, ?)",
          r.minute_ms,
          r.name,
          r.labels,
          r.value,
        );
      }
      expect(inst.metrics.pending()).toBe(4);
      await inst.metrics.ship();
      expect(inst.metrics.pending()).toBe(0);
    });
    const again = await scrape();
    expect(sampleOf(again, "creditgate_entries_total", { kind: "debit", unit })).toBe(2);
    expect(sampleOf(again, "creditgate_entry_amount_total", { kind: "debit", unit })).toBe(7);
    expect(sampleOf(again, "creditgate_entries_total", { kind: "grant", unit })).toBe(1);
    const deltas = await env.DB.prepare("SELECT count(*) AS n FROM metric_deltas WHERE account_id = ?")
      .bind(a)
      .first<{ n: number }>();
    expect(deltas?.n).toBe(4);
  });

  it("a D1 outage keeps the rows in the Durable Object; they ship, once, when D1 is back", async () => {
    const a = uid();
    const unit = freshUnit();
    await grant(a, { amount: 5, unit });
    const stub = ledgerStubFor(a);
    await advanceClock(a, MINUTE + 1000);
    await runInDurableObject(stub, async (inst: AccountLedger) => {
      inst.shipVia = (real) =>
        new Proxy(real, {
          get: (t, prop, r) =>
            prop === "batch"
              ? async () => {
                  throw new Error("D1_ERROR: injected outage");
                }
              : Reflect.get(t, prop, r),
        });
      const retry = await inst.metrics.ship();
      expect(retry).not.toBeNull();
      expect(inst.metrics.pending()).toBe(2);
      inst.shipVia = null;
      await inst.metrics.ship();
      expect(inst.metrics.pending()).toBe(0);
    });
    expect(sampleOf(await scrape(), "creditgate_entries_total", { kind: "grant", unit })).toBe(1);
  });

  it("counts one row per series and minute, however many writes (bounded by series, not by writes)", async () => {
    const a = uid();
    const unit = freshUnit();
    await alignClock(a);
    await grant(a, { amount: 1000, unit });
    for (let i = 0; i < 25; i++) await debit(a, 1, { unit });
    expect(await pendingOf(a)).toBe(4);
    await closeMinute(a);
    expect(await pendingOf(a)).toBe(0);
    const p = await scrape();
    expect(sampleOf(p, "creditgate_entries_total", { kind: "debit", unit })).toBe(25);
    const minutes = await env.DB.prepare("SELECT count(*) AS n FROM metric_deltas WHERE account_id = ? AND name = ?")
      .bind(a, "creditgate_entries_total")
      .first<{ n: number }>();
    expect(minutes?.n).toBe(2);
  });

  it("keeps the labels canonical: kind and unit sorted, as stored", async () => {
    const a = uid();
    const unit = freshUnit();
    await grant(a, { amount: 1, unit });
    await closeMinute(a);
    const row = await env.DB.prepare("SELECT labels FROM metric_deltas WHERE account_id = ? AND name = ?")
      .bind(a, "creditgate_entries_total")
      .first<{ labels: string }>();
    expect(row?.labels).toBe(labelsOf({ unit, kind: "grant" }));
    expect(row?.labels).toBe(`kind="grant",unit="${unit}"`);
  });
});

describe("GET /v1/metrics roles", () => {
  it("admin and viewer read it; gateway and finance are 403; no token is 401", async () => {
    const key = async (role: string) => (await call("POST", "/v1/api-keys", { name: uid("k"), role })).json.key;
    const viewer = await call("GET", "/v1/metrics", undefined, { token: await key("viewer") });
    expect(viewer.status).toBe(200);
    parseExposition(viewer.text);
    expectProblem(await call("GET", "/v1/metrics", undefined, { token: await key("gateway") }), 403, "forbidden");
    expectProblem(await call("GET", "/v1/metrics", undefined, { token: await key("finance") }), 403, "forbidden");
    expectProblem(await call("GET", "/v1/metrics", undefined, { token: null }), 401, "unauthorized");
    expectProblem(await call("GET", "/v1/metrics?x=1"), 400, "invalid_request");
  });
});
