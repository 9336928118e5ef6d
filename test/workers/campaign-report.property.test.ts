/**
 * The campaign report over random histories (fast-check), against a model
 * computed from the generated rows alone. A history is a campaign with 1–3
 * declared variants and a few accounts, each with a redemption ('granted',
 * or still 'reserved') of one variant whose lot (in `credits` or `tokens`)
 * was issued or never was, the lot moved by random kinds (consumption of
 * every kind, invoice reversals that give credits back, expiry, void,
 * refund, transfer.out), some lots of the same campaign that no redemption
 * names, and purchases, promotional grants and transfer.in lots (purchased
 * credits moved in) written before or after the lot in the account's order
 * (seq), at random times before, at and after it. The redemption row's own
 * time is random too: only the lot's journal row anchors the figures.
 * Journal rows are written to D1 as the outbox ships them
 * (reports-helpers.ts Book/insertJournal), the redemption rows through the
 * campaign store (campaign-report-helpers.ts).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { campaignReport, insertCampaign, insertRedemption, type VariantSpec } from "./campaign-report-helpers";
import { uid } from "./helpers";
import { Book, DAY, insertJournal, type JRow, type Lot, type MoveKind } from "./reports-helpers";

const NAMES = ["signup_1000", "trial_7d", "holdout"];
const UNITS = ["credits", "tokens"];
const OUT_KINDS: MoveKind[] = [
  "debit",
  "hold.captured",
  "receipt.settled",
  "invoice",
  "grant.expired",
  "grant.voided",
  "grant.refunded",
  "transfer.out",
];
const BASE = Date.now() - 100 * DAY;

const moveArb = fc.record({
  kind: fc.constantFrom(...OUT_KINDS),
  reverse: fc.boolean(),
  share: fc.double({ min: 0, max: 1, noNaN: true }),
  afterMs: fc.integer({ min: 0, max: 20 * DAY }),
});

const accountArb = fc.record({
  variant: fc.integer({ min: 0, max: 2 }),
  /** The redemption row's status: the report ignores it. */
  granted: fc.constantFrom(true, true, false),
  /** Whether the lot was issued at all (a redemption the account never completed has none). */
  lotIssued: fc.constantFrom(true, true, true, false),
  /** When the lot was issued. */
  lotAtMs: fc.integer({ min: 0, max: 30 * DAY }),
  /** The redemption row's time, relative to the lot (the gateway's clock): no figure depends on it. */
  rowOffsetMs: fc.integer({ min: -DAY, max: DAY }),
  unit: fc.constantFrom(...UNITS),
  amount: fc.integer({ min: 1, max: 1_000_000 }),
  moves: fc.array(moveArb, { maxLength: 6 }),
  /** A reward lot of the same campaign (no redemption names it), moved too. */
  reward: fc.option(
    fc.record({ amount: fc.integer({ min: 1, max: 1000 }), moves: fc.array(moveArb, { maxLength: 3 }) }),
  ),
  /**
   * Other lots of the account, written before or after the campaign lot in its order (seq), at
   * times before, at or after it: a purchased `grant` after it (seq and time) converts; one
   * before it, a promotional one, or purchased credits moved in (transfer.in) do not.
   */
  later: fc.array(
    fc.record({
      afterLot: fc.boolean(),
      offsetMs: fc.oneof(fc.constant(0), fc.integer({ min: -10 * DAY, max: 10 * DAY })),
      type: fc.constantFrom("purchased" as const, "purchased" as const, "promotional" as const),
      kind: fc.constantFrom("grant" as const, "grant" as const, "transfer.in" as const),
      unit: fc.constantFrom(...UNITS),
    }),
    { maxLength: 3 },
  ),
});

type AccountGen = typeof accountArb extends fc.Arbitrary<infer T> ? T : never;

/** Moves a lot as generated: never more out than it holds, never more back than went out. */
function moveLot(book: Book, lot: Lot, moves: readonly (typeof moveArb extends fc.Arbitrary<infer T> ? T : never)[]) {
  for (const m of [...moves].sort((a, b) => a.afterMs - b.afterMs)) {
    const when = lot.at + m.afterMs;
    if (m.reverse && lot.out > 0) book.move(lot, "invoice.reversal", Math.max(1, Math.floor(lot.out * m.share)), when);
    else if (lot.out < lot.amount)
      book.move(lot, m.kind, -Math.max(1, Math.floor((lot.amount - lot.out) * m.share)), when);
  }
}

interface Redemption {
  account: string;
  variant: string;
  grant: string;
}

/**
 * What the report should say, from the rows and redemptions alone: a
 * redemption counts when its lot's `grant` row exists (any status, any
 * unit); it converted when the account has a purchased `grant` row later in
 * its own order (higher seq) and not recorded before the lot.
 */
function model(rows: readonly JRow[], redemptions: readonly Redemption[], declared: readonly string[], unit: string) {
  const lotRow = (r: Redemption) =>
    rows.find((j) => j.account_id === r.account && j.grant_id === r.grant && j.kind === "grant");
  return declared.map((variant) => {
    const mine = redemptions.filter((r) => r.variant === variant && lotRow(r) !== undefined);
    const sum = (category: string) =>
      mine.reduce(
        (s, r) =>
          s +
          rows
            .filter(
              (j) => j.account_id === r.account && j.grant_id === r.grant && j.unit === unit && j.category === category,
            )
            .reduce((t, j) => t + j.amount, 0),
        0,
      );
    const redeemed = mine.length;
    const issued = sum("issued");
    const expired = 0 - sum("expired");
    const converted = mine.filter((r) => {
      const lot = lotRow(r) as JRow;
      return rows.some(
        (j) =>
          j.account_id === r.account &&
          j.kind === "grant" &&
          j.credit_type === "purchased" &&
          j.seq > lot.seq &&
          j.recorded_at_ms >= lot.recorded_at_ms,
      );
    }).length;
    return {
      variant,
      redeemed,
      issued,
      consumed: 0 - sum("consumed"),
      expired,
      converted,
      conversion_bps: redeemed === 0 ? 0 : Math.floor((converted * 10_000) / redeemed),
      breakage_bps: issued === 0 ? 0 : Math.floor((expired * 10_000) / issued),
    };
  });
}

describe("campaign report over random histories", () => {
  it("every variant's figures match the model, in every unit", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 3 }),
        fc.array(accountArb, { minLength: 0, maxLength: 6 }),
        async (variantCount, accounts: AccountGen[]) => {
          const cid = uid("cmp-prop");
          const declared = NAMES.slice(0, variantCount);
          const variants: VariantSpec[] = declared.map((variant) => ({ variant, weight: 1, grant: null }));
          await insertCampaign(cid, variants);
          const book = new Book();
          const redemptions: Redemption[] = [];
          for (const a of accounts) {
            const account = uid("cr-prop");
            const variant = declared[a.variant % declared.length] as string;
            const lotAtMs = BASE + a.lotAtMs;
            const other = (g: AccountGen["later"][number]) => {
              book.issue({ account, unit: g.unit, type: g.type, amount: 100, at: lotAtMs + g.offsetMs });
              // A lot moved in by a transfer: the same row, of kind transfer.in (category issued).
              const row = book.rows[book.rows.length - 1] as JRow;
              if (g.kind === "transfer.in") row.kind = "transfer.in";
            };
            for (const g of a.later) if (!g.afterLot) other(g);
            let grantId = `campaign.${cid}`;
            if (a.lotIssued) {
              const lot = book.issue({
                account,
                unit: a.unit,
                type: "promotional",
                amount: a.amount,
                at: lotAtMs,
                campaign: cid,
              });
              grantId = lot.grant;
              moveLot(book, lot, a.moves);
            }
            if (a.reward) {
              const reward = book.issue({
                account,
                unit: a.unit,
                type: "promotional",
                amount: a.reward.amount,
                at: lotAtMs,
                campaign: cid,
              });
              moveLot(book, reward, a.reward.moves);
            }
            for (const g of a.later) if (g.afterLot) other(g);
            redemptions.push({ account, variant, grant: grantId });
            await insertRedemption({
              campaignId: cid,
              accountId: account,
              variant,
              grantId,
              redeemedAtMs: lotAtMs + a.rowOffsetMs,
              status: a.granted ? "granted" : "reserved",
            });
          }
          await insertJournal(book.rows);
          for (const unit of UNITS) {
            const res = await campaignReport(cid, { unit });
            expect(res.status, res.text).toBe(200);
            expect(res.json).toEqual({
              campaign_id: cid,
              unit,
              variants: model(book.rows, redemptions, declared, unit),
            });
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});
