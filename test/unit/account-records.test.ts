/** Pure pieces of the AccountLedger shell: record merges, holds, deadlines, alerts and answers. */
import { describe, expect, it } from "vitest";
import { accountRecord, earliestDeadline, indexChanged, nextDeadline, openHold } from "../../src/account/records";
import type { AccountRecord, HoldRequest } from "../../src/account/types";
import { answer, closeView, fromLedgerError, settleBody } from "../../src/account/views";
import { LotBook, raiseAlerts } from "../../src/ledger";
import { byId, makeHold, makeLot, T0 } from "./fixtures";

const iso = (ms: number) => new Date(ms).toISOString();

describe("accountRecord (upsert merge)", () => {
  it("starts a new account with every optional field empty", () => {
    expect(accountRecord(null, "acct_1", {}, T0)).toEqual({
      account_id: "acct_1",
      name: null,
      parent_id: null,
      verified: false,
      metadata: null,
      low_balance: null,
      created_at: iso(T0),
      updated_at: iso(T0),
    });
  });

  const prev: AccountRecord = {
    account_id: "acct_1",
    name: "Acme",
    parent_id: "acct_parent",
    verified: true,
    metadata: { plan: "pro" },
    low_balance: { credits: 100 },
    created_at: iso(T0),
    updated_at: iso(T0),
  };

  it("keeps fields the update omits and its creation time; moves updated_at", () => {
    const next = accountRecord(prev, "acct_1", { name: "Acme Inc" }, T0 + 5000);
    expect(next).toEqual({ ...prev, name: "Acme Inc", updated_at: iso(T0 + 5000) });
  });

  it("clears a field the update sets to null, and takes an explicit false", () => {
    const next = accountRecord(
      prev,
      "acct_1",
      { parent_id: null, metadata: null, low_balance: null, verified: false },
      T0 + 1,
    );
    expect(next).toMatchObject({ name: "Acme", parent_id: null, metadata: null, low_balance: null, verified: false });
  });

  it("replaces the fields the update gives", () => {
    const input = { name: "B", parent_id: "p2", metadata: { a: "1" }, low_balance: { tokens: 5 } };
    expect(accountRecord(prev, "acct_1", input, T0 + 1)).toMatchObject({ ...input, verified: true });
  });
});

describe("openHold", () => {
  const req: HoldRequest = { id: "h1", unit: "credits", amount: 30, ttlSeconds: 60 };
  const applied = [
    { grantId: "g1", type: "purchased" as const, amount: 20 },
    { grantId: "g2", type: "promotional" as const, amount: 10 },
  ];

  it("holds until now + ttl, allocated over the lots drawn", () => {
    expect(openHold(req, "hold", applied, T0)).toEqual({
      holdId: "h1",
      kind: "hold",
      unit: "credits",
      amount: 30,
      allocations: [
        { grantId: "g1", amount: 20 },
        { grantId: "g2", amount: 10 },
      ],
      status: "open",
      expiresAtMs: T0 + 60_000,
      captured: 0,
      released: 0,
      createdAtMs: T0,
      closedAtMs: null,
    });
  });

  it("holds a receipt for its ttl plus the settle grace, on the account's clock (not the token's exp)", () => {
    // The token says exp = T0 − 5 s + 60 s (another clock); the account reserved at T0: T0 + 60 s + 30 s.
    const receipt = { token: "jwt", expiresAtMs: T0 + 55_000, settleGraceMs: 30_000 };
    expect(openHold({ ...req, receipt }, "receipt", applied, T0).expiresAtMs).toBe(T0 + 90_000);
  });
});

describe("deadlines", () => {
  const holds = [
    makeHold({ holdId: "a", allocations: [], expiresAtMs: T0 + 500 }),
    makeHold({ holdId: "b", allocations: [], expiresAtMs: T0 + 200 }),
  ];

  it("earliestDeadline is the soonest hold deadline, or null with no holds", () => {
    expect(earliestDeadline(holds)).toBe(T0 + 200);
    expect(earliestDeadline([])).toBeNull();
  });

  it("nextDeadline is the sooner of the next lot expiry and the next hold deadline", () => {
    const lots = [makeLot({ grantId: "g1", expiresAtMs: T0 + 100 }), makeLot({ grantId: "g2" })];
    expect(nextDeadline(lots, holds, T0)).toBe(T0 + 100);
    expect(nextDeadline([makeLot({ grantId: "g3", expiresAtMs: T0 + 900 })], holds, T0)).toBe(T0 + 200);
    expect(nextDeadline([makeLot({ grantId: "g4" })], [], T0)).toBeNull();
  });
});

describe("indexChanged (D1 grant index)", () => {
  const lot = makeLot({ grantId: "g1", amount: 100 });

  it("is true for a new lot, a void, and a lot whose unheld remainder reaches or leaves zero", () => {
    expect(indexChanged(undefined, lot)).toBe(true);
    expect(indexChanged(lot, { ...lot, voidedAtMs: T0 })).toBe(true);
    expect(indexChanged(lot, { ...lot, remaining: 0 })).toBe(true);
    expect(indexChanged({ ...lot, held: 100 }, { ...lot, held: 40 })).toBe(true);
  });

  it("is false for an ordinary draw that leaves the lot open", () => {
    expect(indexChanged(lot, { ...lot, remaining: 60 })).toBe(false);
    expect(indexChanged(lot, { ...lot, held: 30 })).toBe(false);
  });
});

describe("raiseAlerts", () => {
  it("raises balance.low on the lots after the change and credits.expired for expiry drafts", () => {
    const raised = raiseAlerts({
      accountId: "acct_1",
      thresholds: { credits: 50 },
      lowBalance: {},
      drafts: [
        {
          kind: "grant.expired",
          unit: "credits",
          amount: -8,
          heldDelta: 0,
          grantId: "g0",
          creditType: "promotional",
          ref: null,
          reason: null,
          effectiveAtMs: T0,
        },
      ],
      lots: byId([makeLot({ grantId: "g1", amount: 40 })]).values(),
      nowMs: T0,
      idPrefix: "alert_txn_1",
    });
    expect(raised.alerts.map((a) => [a.id, a.type, a.account_id])).toEqual([
      ["alert_txn_1.0", "balance.low", "acct_1"],
      ["alert_txn_1.1", "credits.expired", "acct_1"],
    ]);
    expect(raised.lowBalance).toEqual({ credits: true });
    expect(raised.lowChanged).toBe(true);
  });

  it("raises nothing and changes nothing once the crossing has fired", () => {
    const raised = raiseAlerts({
      accountId: "acct_1",
      thresholds: { credits: 50 },
      lowBalance: { credits: true },
      drafts: [],
      lots: [makeLot({ grantId: "g1", amount: 40 })],
      nowMs: T0,
      idPrefix: "alert_x",
    });
    expect(raised).toEqual({ alerts: [], lowBalance: { credits: true }, lowChanged: false });
  });
});

describe("answers", () => {
  it("maps insufficient_credits with the numbers the client needs", () => {
    expect(fromLedgerError({ code: "insufficient_credits", available: 3, requested: 5 })).toEqual({
      code: "insufficient_credits",
      detail: "available 3 is less than requested 5",
      extra: { available: 3, requested: 5 },
    });
    expect(fromLedgerError({ code: "hold_closed", detail: "closed" })).toEqual({
      code: "hold_closed",
      detail: "closed",
    });
  });

  it("answer defaults to a first 200", () => {
    expect(answer({ a: 1 })).toEqual({ ok: true, status: 200, body: { a: 1 }, replayed: false });
    expect(answer({ a: 1 }, 201, true)).toEqual({ ok: true, status: 201, body: { a: 1 }, replayed: true });
  });

  it("a capture serves what was captured; a release does not", () => {
    const lots = new LotBook([makeLot({ grantId: "g1", amount: 100 })]);
    const hold = makeHold({
      holdId: "h1",
      allocations: [{ grantId: "g1", amount: 10 }],
      status: "captured",
      captured: 6,
      released: 4,
    });
    const captured = closeView("acct_1", hold, "capture", T0, lots) as Record<string, unknown>;
    expect(Object.keys(captured)).toEqual(["hold_id", "status", "captured", "released", "balance"]);
    const released = closeView("acct_1", { ...hold, status: "released" }, "release", T0, lots);
    expect(Object.keys(released as Record<string, unknown>)).toEqual(["hold_id", "status", "released", "balance"]);
    expect(settleBody("r1", 6, 4, null)).toEqual({ receipt_id: "r1", used: 6, released: 4, balance: null });
  });
});
