/**
 * The journal: for every entry that moves a lot's credits, what finance
 * reports need beyond the entry itself — the category of the movement, the
 * cost that moved with it (the cumulative rule, money.ts), tax collected on a
 * purchase, and how long the credits waited before they were consumed.
 * Derived from entries and their lots, never typed in.
 */
import { movementCost } from "./money";
import { assert, type Entry, type EntryKind, type Lot } from "./types";

export const JOURNAL_CATEGORIES = ["issued", "consumed", "expired", "voided", "refunded", "transferred"] as const;
export type JournalCategory = (typeof JOURNAL_CATEGORIES)[number];

/** How each kind that moves credits counts in the books (kinds that only move `held` write no journal row). */
const CATEGORY: Record<EntryKind, JournalCategory | null> = {
  grant: "issued",
  "transfer.in": "issued",
  debit: "consumed",
  "hold.captured": "consumed",
  "receipt.settled": "consumed",
  invoice: "consumed",
  // Credits coming back: recognition is reversed in the period of the reversal.
  "invoice.reversal": "consumed",
  "grant.expired": "expired",
  "grant.voided": "voided",
  "grant.refunded": "refunded",
  "transfer.out": "transferred",
  hold: null,
  "hold.released": null,
  receipt: null,
  // A rollover moves credits between two lots of the same type, source and campaign, without cost:
  // neither issuance nor expiry, so it writes no journal row (the period's lot was issued once).
  "grant.rolled_over": null,
  rollover: null,
};

export interface JournalRow {
  entry_id: string;
  account_id: string;
  seq: number;
  unit: string;
  kind: EntryKind;
  category: JournalCategory;
  amount: number;
  credit_type: Lot["type"];
  grant_id: string;
  source: string | null;
  campaign: string | null;
  /** issued: the cost basis paid; otherwise the cost that left deferred revenue (− when it came back). */
  cost_minor: number;
  currency: string | null;
  tax_minor: number;
  tax_jurisdiction: string | null;
  /** consumed: credits × (recorded − lot created); − for a reversal. */
  age_weight_ms: number;
  recorded_at_ms: number;
}

/**
 * The journal rows of one transaction's sealed entries. `before` gives each
 * lot as it was before the transaction (undefined for a lot it creates);
 * `after` its terms (for the cost basis and creation time).
 * @example journalRows(sealed, (id) => lots.get(id), (id) => staged.get(id))
 */
export function journalRows(
  entries: readonly Entry[],
  before: (grantId: string) => Lot | undefined,
  after: (grantId: string) => Lot | undefined,
): JournalRow[] {
  const running = new Map<string, number>();
  const rows: JournalRow[] = [];
  for (const e of entries) {
    if (e.grant_id === null) continue;
    const lot = after(e.grant_id);
    assert(lot !== undefined, `entry ${e.entry_id} names lot ${e.grant_id}, which the transaction does not hold`);
    const was = running.get(e.grant_id) ?? before(e.grant_id)?.remaining ?? 0;
    const now = was + e.amount;
    running.set(e.grant_id, now);
    const category = CATEGORY[e.kind];
    if (category === null || e.amount === 0) continue;
    const recordedAtMs = Date.parse(e.recorded_at);
    const issued = category === "issued";
    rows.push({
      entry_id: e.entry_id,
      account_id: e.account_id,
      seq: e.seq,
      unit: e.unit,
      kind: e.kind,
      category,
      amount: e.amount,
      credit_type: lot.type,
      grant_id: lot.grantId,
      source: lot.source,
      campaign: lot.campaign,
      cost_minor: issued ? (lot.costBasis?.amount ?? 0) : movementCost(lot, was, now),
      currency: lot.costBasis?.currency ?? null,
      tax_minor: issued ? (lot.costBasis?.tax?.amount ?? 0) : 0,
      tax_jurisdiction: issued ? (lot.costBasis?.tax?.jurisdiction ?? null) : null,
      age_weight_ms: category === "consumed" ? -e.amount * (recordedAtMs - lot.createdAtMs) : 0,
      recorded_at_ms: recordedAtMs,
    });
  }
  return rows;
}
