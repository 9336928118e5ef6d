/** Pure alert and reconciliation rules (src/ledger/alerts.ts, src/ledger/reconcile.ts). */
import { describe, expect, it } from "vitest";
import { nextWatermark } from "../../src/cron/touched";
import {
  auditStep,
  chainDrift,
  compareAccount,
  coveredHours,
  type DoSnapshot,
  type EntryDraft,
  expiredAlerts,
  expiringWindowDue,
  GENESIS_HASH,
  isUsageSpike,
  type LowBalanceState,
  lowBalanceCrossings,
  totalsOf,
  usageWindow,
} from "../../src/ledger";
import { makeLot, serveChain, T0 } from "./fixtures";

const HOUR = 3_600_000;
const DAY = 86_400_000;

describe("balance.low", () => {
  it("fires once per crossing below the threshold and re-arms at or above it", () => {
    const thresholds = { credits: 100 };
    let state: LowBalanceState = {};
    const fired: number[] = [];
    // available over time: above, below, still below, back at the threshold, below again, below.
    for (const available of [150, 90, 40, 100, 99, 10]) {
      const out = lowBalanceCrossings(thresholds, state, () => available, T0);
      fired.push(out.alerts.length);
      state = out.state;
    }
    expect(fired).toEqual([0, 1, 0, 0, 1, 0]);
  });

  it("tracks units separately and reports threshold and available", () => {
    const out = lowBalanceCrossings({ credits: 10, tokens: 1000 }, {}, (u) => (u === "tokens" ? 5 : 50), T0);
    expect(out.alerts).toEqual([
      { type: "balance.low", unit: "tokens", data: { unit: "tokens", available: 5, threshold: 1000 }, atMs: T0 },
    ]);
    expect(out.state).toEqual({ tokens: true });
    expect(out.changed).toBe(true);
    expect(lowBalanceCrossings({ credits: 10, tokens: 1000 }, out.state, () => 5, T0).changed).toBe(true);
    expect(lowBalanceCrossings(null, {}, () => 0, T0)).toEqual({ alerts: [], state: {}, changed: false });
  });
});

describe("credits.expired", () => {
  it("one alert per grant.expired entry, with the amount lost", () => {
    const base: Omit<EntryDraft, "kind" | "amount"> = {
      unit: "credits",
      heldDelta: 0,
      grantId: "g1",
      creditType: "promotional",
      ref: null,
      reason: null,
      effectiveAtMs: T0,
    };
    const alerts = expiredAlerts(
      [
        { ...base, kind: "grant.expired", amount: -70 },
        { ...base, kind: "debit", amount: -5 },
      ],
      T0 + 10,
    );
    expect(alerts).toEqual([
      {
        type: "credits.expired",
        unit: "credits",
        data: {
          grant_id: "g1",
          unit: "credits",
          credit_type: "promotional",
          amount_lost: 70,
          expired_at: new Date(T0).toISOString(),
        },
        atMs: T0 + 10,
      },
    ]);
  });
});

describe("credits.expiring", () => {
  const windows = [7, 1];
  it("is due in the smallest window the lot is in, once per window", () => {
    expect(expiringWindowDue(T0 + 10 * DAY, T0, windows, null)).toBeNull();
    expect(expiringWindowDue(T0 + 3 * DAY, T0, windows, null)).toBe(7);
    expect(expiringWindowDue(T0 + 3 * DAY, T0, windows, 7)).toBeNull();
    expect(expiringWindowDue(T0 + 12 * HOUR, T0, windows, 7)).toBe(1);
    expect(expiringWindowDue(T0 + 12 * HOUR, T0, windows, 1)).toBeNull();
    // A lot granted 12 h before it expires hears only about the 1-day window.
    expect(expiringWindowDue(T0 + 12 * HOUR, T0, windows, null)).toBe(1);
    expect(expiringWindowDue(T0 + 7 * DAY, T0, windows, null)).toBe(7);
    expect(expiringWindowDue(T0, T0, windows, null)).toBeNull();
  });
});

describe("usage.spike on a synthetic history", () => {
  /** 24 quiet hours of `perHour` each, then `lastHour` within the last hour. */
  function history(perHour: number, lastHour: number, now: number) {
    const events: { atMs: number; amount: number }[] = [];
    for (let h = 24; h >= 1; h--) events.push({ atMs: now - h * HOUR - 60_000, amount: perHour });
    events.push({ atMs: now - 30 * 60_000, amount: lastHour });
    // Older than the trailing window: ignored.
    events.push({ atMs: now - 30 * HOUR, amount: 1_000_000 });
    return events;
  }

  it("flags a last hour at least factor × the trailing hourly average, and nothing below it", () => {
    const now = T0 + 100 * HOUR;
    const spike = usageWindow(history(3, 30, now), now, 24);
    expect(spike).toEqual({ lastHour: 30, trailing: 72, coveredHours: 24 });
    expect(isUsageSpike(spike, 10, 24)).toBe(true);
    const below = usageWindow(history(3, 29, now), now, 24);
    expect(isUsageSpike(below, 10, 24)).toBe(false);
    // The factor is configurable.
    expect(isUsageSpike(below, 9, 24)).toBe(true);
  });

  it("a first hour of use, or an idle hour, is not a spike", () => {
    expect(isUsageSpike({ lastHour: 500, trailing: 0, coveredHours: 24 }, 10, 24)).toBe(false);
    expect(isUsageSpike({ lastHour: 0, trailing: 100, coveredHours: 24 }, 10, 24)).toBe(false);
  });

  it("averages over the hours the account's history covers, not the whole trailing window", () => {
    const now = T0 + 100 * HOUR;
    expect(coveredHours(now - 30 * HOUR, now, 24)).toBe(24);
    expect(coveredHours(now - 25 * HOUR, now, 24)).toBe(24);
    expect(coveredHours(now - 6 * HOUR - 1, now, 24)).toBe(5);
    expect(coveredHours(now - 2.5 * HOUR, now, 24)).toBe(1);
    expect(coveredHours(now - 30 * 60_000, now, 24)).toBe(0);
    expect(coveredHours(null, now, 24)).toBe(0);
    // A 6-hour-old account using 3 an hour, then 30: 30 × 5 ≥ 10 × 15, a spike over its own average…
    const young = (lastHour: number) => {
      const start = now - 6 * HOUR;
      const events = [1, 2, 3, 4, 5].map((h) => ({ atMs: start + h * HOUR - 60_000, amount: 3 }));
      return usageWindow([...events, { atMs: now - 60_000, amount: lastHour }], now, 24, start);
    };
    expect(young(30)).toEqual({ lastHour: 30, trailing: 15, coveredHours: 5 });
    expect(isUsageSpike(young(30), 10, 24)).toBe(true);
    // …while steady use, the same each hour, is not (over 24 h it would be: 6 × 24 ≥ 10 × 15).
    expect(isUsageSpike(young(6), 10, 24)).toBe(false);
  });

  it("needs a few hours of history before any spike: a new account consuming steadily is left alone", () => {
    const now = T0 + 100 * HOUR;
    const start = now - 2.5 * HOUR; // granted 2.5 h ago, 1 an hour since
    const events = [1, 2, 2.5].map((h) => ({ atMs: start + h * HOUR - 60_000, amount: 1 }));
    const w = usageWindow(events, now, 24, start);
    expect(w).toEqual({ lastHour: 2, trailing: 1, coveredHours: 1 });
    expect(isUsageSpike(w, 10, 24)).toBe(false);
    // Even a real burst waits for three covered hours.
    expect(isUsageSpike({ lastHour: 1000, trailing: 1, coveredHours: 2 }, 10, 24)).toBe(false);
    expect(isUsageSpike({ lastHour: 1000, trailing: 1, coveredHours: 3 }, 10, 24)).toBe(true);
    // A trailing window shorter than the minimum needs only itself.
    expect(isUsageSpike({ lastHour: 100, trailing: 1, coveredHours: 2 }, 10, 2)).toBe(true);
    // Without a start given, history starts at the earliest event (here 1 h 31 min ago: no whole hour before the last).
    expect(usageWindow(events, now, 24).coveredHours).toBe(0);
  });
});

describe("touched-since watermark", () => {
  const mark = { ms: 1_000, id: "b" };
  it("follows the rows read while they are older than the overlap", () => {
    expect(nextWatermark(mark, { ms: 5_000, id: "c" }, 100_000, 60_000)).toEqual({ ms: 5_000, id: "c" });
    expect(nextWatermark(mark, null, 100_000, 60_000)).toEqual(mark);
  });
  it("never passes read time − overlap, so a commit stamped before its rows still visible is read next run", () => {
    expect(nextWatermark(mark, { ms: 99_000, id: "c" }, 100_000, 60_000)).toEqual({ ms: 40_000, id: "" });
    // …and never moves back.
    expect(nextWatermark({ ms: 50_000, id: "a" }, { ms: 99_000, id: "c" }, 100_000, 60_000)).toEqual({
      ms: 50_000,
      id: "a",
    });
  });
});

describe("reconciliation compare", () => {
  const lots = [
    makeLot({ grantId: "a", amount: 100, remaining: 60, held: 10 }),
    makeLot({ grantId: "b", amount: 50, type: "promotional", remaining: 50 }),
  ];
  const snap: DoSnapshot = { seq: 5, hash: "h5", pending: 0, totals: totalsOf(lots) };

  it("equal sides report nothing", () => {
    const d1 = { count: 5, hashAtSeq: "h5", maxSeq: 5, totals: totalsOf(lots) };
    expect(compareAccount(snap, d1, 5)).toEqual([]);
  });

  it("a missing entry shows as a gap and a balance difference", () => {
    const d1 = {
      count: 4,
      hashAtSeq: "h5",
      maxSeq: 5,
      totals: [
        { unit: "credits", credit_type: "promotional", remaining: 50, held: 0 },
        { unit: "credits", credit_type: "purchased", remaining: 63, held: 10 },
      ],
    };
    const kinds = compareAccount(snap, d1, 5).map((d) => [d.kind, d.expected, d.actual]);
    expect(kinds).toEqual([
      ["seq_gap", "5", "4"],
      ["balance", "60", "63"],
    ]);
  });

  it("rows beyond the DO's head are drift only if the DO still has not written them", () => {
    const d1 = { count: 5, hashAtSeq: "h5", maxSeq: 6, totals: totalsOf(lots) };
    expect(compareAccount(snap, d1, 6)).toEqual([]);
    expect(compareAccount(snap, d1, 5).map((d) => d.kind)).toEqual(["d1_ahead"]);
  });

  it("re-verifies a chain slice from a checkpoint and names the first break", () => {
    const drafts = [1, 2, 3].map((i) => ({
      kind: "debit" as const,
      unit: "credits",
      amount: -i,
      heldDelta: 0,
      grantId: "a",
      creditType: "purchased" as const,
      ref: `d${i}`,
      reason: null,
      effectiveAtMs: T0,
      recordedAtMs: T0,
    }));
    const chain = serveChain("acct", drafts);
    expect(chainDrift(chain, 0, GENESIS_HASH)).toBeNull();
    expect(chainDrift(chain.slice(1), 1, chain[0]!.hash)).toBeNull();
    const tampered = chain.map((e) => (e.seq === 2 ? { ...e, amount: -200 } : e));
    expect(chainDrift(tampered, 0, GENESIS_HASH)?.detail).toMatch(/seq 2: hash does not match/);
    expect(chainDrift([chain[0]!, chain[2]!], 0, GENESIS_HASH)?.detail).toMatch(/seq 3: expected seq 2/);
  });
});

describe("rolling audit below the checkpoint", () => {
  const drafts = [1, 2, 3, 4, 5, 6, 7].map((i) => ({
    kind: "debit" as const,
    unit: "credits",
    amount: -i,
    heldDelta: 0,
    grantId: "a",
    creditType: "purchased" as const,
    ref: `d${i}`,
    reason: null,
    effectiveAtMs: T0,
    recordedAtMs: T0,
  }));
  const chain = serveChain("acct", drafts);
  const at = (seq: number) => ({ seq, hash: seq === 0 ? GENESIS_HASH : chain[seq - 1]!.hash });
  const page = (after: number, upTo: number, limit: number) =>
    chain.filter((e) => e.seq > after && e.seq <= upTo).slice(0, limit);

  it("walks from seq 1 to the checkpoint in bounded pages, continuing where the last page stopped", () => {
    const target = at(5);
    let from = at(0);
    const pages: number[] = [];
    for (;;) {
      const step = auditStep(page(from.seq, target.seq, 2), from, target, 2);
      expect(step.drift).toBeNull();
      pages.push(step.verified);
      if (step.next === null) break;
      from = step.next;
    }
    expect(pages).toEqual([2, 2, 1]);
    // A page that ends exactly on the checkpoint finishes the pass.
    expect(auditStep(page(2, 4, 2), at(2), at(4), 2)).toEqual({ drift: null, verified: 2, next: null });
  });

  it("finds an edit below the checkpoint that keeps every sum, the count and the head", () => {
    const edited = chain.map((e) => (e.seq === 2 ? { ...e, reason: "edited" } : e));
    const step = auditStep(edited.slice(0, 5), at(0), at(5), 10);
    expect(step.drift).toMatchObject({ kind: "chain", actual: "2" });
    expect(step.drift?.detail).toMatch(/^audit: D1 chain breaks at seq 2: hash does not match/);
    expect(step.next).toBeNull();
  });

  it("a stretch rewritten with fresh hashes cannot re-link to the verified checkpoint", () => {
    // seq 1–3 rebuilt consistently with a changed seq 2: the chain verifies on its own, but not to the checkpoint.
    const rebuilt = serveChain("acct", drafts.map((d, i) => (i === 1 ? { ...d, ref: "forged" } : d)).slice(0, 3));
    expect(chainDrift(rebuilt, 0, GENESIS_HASH)).toBeNull();
    const step = auditStep(rebuilt, at(0), at(3), 10);
    expect(step.drift?.detail).toMatch(/differs from the verified checkpoint/);
  });

  it("missing entries before the checkpoint are a break", () => {
    expect(auditStep(page(0, 2, 10), at(0), at(5), 10).drift?.detail).toMatch(/no entry after seq 2/);
    expect(auditStep([chain[0]!, chain[2]!], at(0), at(5), 10).drift?.detail).toMatch(/seq 3: expected seq 2/);
  });
});
