/** journalRows: the category, cost and age each movement carries, from hand-worked figures. */
import { describe, expect, it } from "vitest";
import { type Entry, journalRows, type Lot } from "../../src/ledger";
import { makeLot, T0 } from "./fixtures";

const entry = (over: Partial<Entry> & Pick<Entry, "seq" | "kind" | "amount" | "grant_id">): Entry => ({
  account_id: "a",
  entry_id: `t.${over.seq}`,
  txn_id: "t",
  unit: "credits",
  held_delta: 0,
  credit_type: "purchased",
  ref: null,
  actor: "k:admin",
  reason: null,
  effective_at: new Date(T0).toISOString(),
  recorded_at: new Date(T0 + 3_600_000).toISOString(),
  prev_hash: "0".repeat(64),
  hash: "0".repeat(64),
  ...over,
});

describe("journalRows", () => {
  const lot: Lot = makeLot({
    grantId: "p",
    amount: 3,
    remaining: 3,
    costBasis: { amount: 100, currency: "USD", tax: { amount: 19, jurisdiction: "DE" } },
    source: "stripe",
    campaign: "spring",
    createdAtMs: T0,
  });

  it("a grant is issued at its cost and tax; each credit out carries floor(100·x/3) minus what left before", () => {
    const rows = journalRows(
      [
        entry({ seq: 1, kind: "grant", amount: 3, grant_id: "p" }),
        entry({ seq: 2, kind: "debit", amount: -1, grant_id: "p" }),
        entry({ seq: 3, kind: "hold", amount: 0, held_delta: 2, grant_id: "p" }),
        entry({ seq: 4, kind: "hold.captured", amount: -1, held_delta: -1, grant_id: "p" }),
        entry({ seq: 5, kind: "grant.expired", amount: -1, grant_id: "p" }),
      ],
      () => undefined,
      () => lot,
    );
    expect(rows.map((r) => [r.seq, r.category, r.amount, r.cost_minor, r.tax_minor, r.age_weight_ms])).toEqual([
      [1, "issued", 3, 100, 19, 0],
      [2, "consumed", -1, 33, 0, 3_600_000],
      // seq 3 moves held only: no row.
      [4, "consumed", -1, 33, 0, 3_600_000],
      [5, "expired", -1, 34, 0, 0],
    ]);
    expect(rows.every((r) => r.source === "stripe" && r.campaign === "spring" && r.currency === "USD")).toBe(true);
  });

  it("an invoice reversal brings cost back (negative) and is counted against consumption", () => {
    const before = { ...lot, remaining: 1 };
    const rows = journalRows(
      [entry({ seq: 9, kind: "invoice.reversal", amount: 1, grant_id: "p" })],
      () => before,
      () => ({ ...lot, remaining: 2 }),
    );
    // out goes from 2 (cost 66) to 1 (cost 33): 33 comes back.
    expect(rows.map((r) => [r.category, r.amount, r.cost_minor, r.age_weight_ms])).toEqual([
      ["consumed", 1, -33, -3_600_000],
    ]);
  });
});
