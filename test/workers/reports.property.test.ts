/**
 * Issue 8: "For random histories (fast-check), every revenue report satisfies
 * closing = opening + purchased − recognized − breakage − refunded,
 * consecutive periods chain, and the sum of recognized + breakage + refunded
 * + deferred closing equals the total cost basis purchased, to the minor unit."
 *
 * A history is a few lots (purchased with a cost basis in USD or EUR,
 * promotional, compensatory), each issued once and then moved by random
 * kinds on random later days: consumption of every kind, reversals that give
 * credits back, expiry, void, refund. Each movement carries its cost by the
 * cumulative rule (reports-helpers.ts, from src/ledger/money.ts's costOut).
 * Rows go into D1 under a unit of their own, and the reports, over random
 * windows by day or month, are checked against the identities and against a
 * model computed from the rows alone. No transfer is generated (none is
 * written yet), so `transferred` must be 0 and the contract's identity holds
 * as written.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { CreditType } from "../../src/ledger";
import { nextStart, type Period, periodStart } from "../../src/reports/periods";
import {
  Book,
  DAY,
  freshUnit,
  insertJournal,
  type JRow,
  type MoveKind,
  modelCost,
  modelDeferred,
  modelOutstanding,
  report,
} from "./reports-helpers";

/** Histories start at a month boundary ~300 days ago and span 200 days, so every as_of is in the past. */
const BASE = periodStart(Date.now() - 300 * DAY, "month");
const SPAN_DAYS = 200;

const OUT_KINDS: MoveKind[] = [
  "debit",
  "hold.captured",
  "receipt.settled",
  "invoice",
  "grant.expired",
  "grant.voided",
  "grant.refunded",
];

const lotArb = fc.record({
  account: fc.integer({ min: 0, max: 3 }),
  type: fc.constantFrom<CreditType>("purchased", "purchased", "promotional", "compensatory"),
  currency: fc.constantFrom("USD", "USD", "EUR"),
  amount: fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: 1_000_000_000 })),
  cost: fc.oneof(fc.integer({ min: 0, max: 100_000 }), fc.integer({ min: 0, max: 1_000_000_000_000 })),
  tax: fc.integer({ min: 0, max: 10_000 }),
  issuedAtMs: fc.integer({ min: 0, max: SPAN_DAYS * DAY - 1 }),
  moves: fc.array(
    fc.record({
      /** An outflow of one of OUT_KINDS, or (reverse) credits given back by an invoice reversal. */
      kind: fc.constantFrom(...OUT_KINDS),
      reverse: fc.boolean(),
      share: fc.double({ min: 0, max: 1, noNaN: true }),
      afterMs: fc.integer({ min: 0, max: 60 * DAY }),
    }),
    { maxLength: 8 },
  ),
});

/** Journal rows consistent with lots: never more out than the lot holds, never more back than went out. */
type LotGen = typeof lotArb extends fc.Arbitrary<infer T> ? T : never;

function historyOf(lots: readonly LotGen[], unit: string, accounts: readonly string[]): JRow[] {
  const book = new Book();
  for (const l of lots) {
    const at = BASE + l.issuedAtMs;
    const lot = book.issue({
      account: accounts[l.account] as string,
      unit,
      type: l.type,
      amount: l.amount,
      at,
      ...(l.type === "purchased"
        ? {
            cost: {
              amount: l.cost,
              currency: l.currency,
              tax: { amount: l.tax, jurisdiction: l.currency === "USD" ? "US-NY" : "DE" },
            },
          }
        : {}),
    });
    let when = at;
    for (const m of [...l.moves].sort((a, b) => a.afterMs - b.afterMs)) {
      when = Math.min(at + m.afterMs, BASE + SPAN_DAYS * DAY - 1);
      if (m.reverse && lot.out > 0) {
        book.move(lot, "invoice.reversal", Math.max(1, Math.floor(lot.out * m.share)), when);
      } else if (lot.out < lot.amount) {
        const left = lot.amount - lot.out;
        book.move(lot, m.kind, -Math.max(1, Math.floor(left * m.share)), when);
      }
    }
  }
  return book.rows;
}

const windowArb = fc.record({
  period: fc.constantFrom<Period>("day", "month"),
  startDay: fc.integer({ min: -10, max: SPAN_DAYS + 10 }),
  count: fc.integer({ min: 1, max: 40 }),
});

function windowOf(w: typeof windowArb extends fc.Arbitrary<infer T> ? T : never): { from: number; to: number } {
  const from = periodStart(BASE + w.startDay * DAY, w.period);
  let to = from;
  const n = w.period === "month" ? Math.min(w.count, 9) : w.count * 3;
  for (let i = 0; i < n; i++) to = nextStart(to, w.period);
  return { from, to };
}

const iso = (ms: number) => new Date(ms).toISOString();

describe("revenue over random histories", () => {
  it("every period: closing = opening + purchased − recognized − breakage − refunded; periods chain; the model agrees", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(lotArb, { minLength: 1, maxLength: 10 }),
        fc.array(windowArb, { minLength: 1, maxLength: 3 }),
        fc.integer({ min: 0, max: SPAN_DAYS * DAY }),
        async (lots, windows, asOfOffset) => {
          const unit = freshUnit();
          const accounts = [0, 1, 2, 3].map((i) => `${unit}-a${i}`);
          const rows = historyOf(lots, unit, accounts);
          await insertJournal(rows);

          for (const w of windows) {
            const { from, to } = windowOf(w);
            for (const currency of ["USD", "EUR"]) {
              const res = await report("revenue", { from: iso(from), to: iso(to), period: w.period, currency, unit });
              expect(res.status, res.text).toBe(200);
              const periods = res.json.periods as any[];
              expect(periods[0].start).toBe(iso(from));
              expect(periods.at(-1).end).toBe(iso(to));
              expect(periods[0].deferred_opening).toBe(modelDeferred(rows, currency, from));
              for (const [i, p] of periods.entries()) {
                expect(p.transferred).toBe(0);
                expect(p.deferred_closing).toBe(
                  p.deferred_opening + p.purchased - p.recognized - p.breakage - p.refunded,
                );
                if (i > 0) expect(p.deferred_opening).toBe(periods[i - 1].deferred_closing);
                if (i > 0) expect(p.start).toBe(periods[i - 1].end);
                const s = Date.parse(p.start);
                const e = Date.parse(p.end);
                expect(p.purchased).toBe(modelCost(rows, currency, "issued", s, e));
                expect(p.recognized).toBe(modelCost(rows, currency, "consumed", s, e));
                expect(p.breakage).toBe(
                  modelCost(rows, currency, "expired", s, e) + modelCost(rows, currency, "voided", s, e),
                );
                expect(p.refunded).toBe(modelCost(rows, currency, "refunded", s, e));
              }
              expect(periods.at(-1).deferred_closing).toBe(modelDeferred(rows, currency, to));
            }
          }

          // The whole history in one window (opening 0): every minor unit purchased is recognized,
          // broken, refunded or still deferred.
          const all = {
            from: iso(BASE),
            to: iso(periodStart(BASE + (SPAN_DAYS + 40) * DAY, "month")),
            period: "month",
          };
          for (const currency of ["USD", "EUR"]) {
            const periods = (await report("revenue", { ...all, currency, unit })).json.periods as any[];
            expect(periods[0].deferred_opening).toBe(0);
            const sum = (k: string) => periods.reduce((acc, p) => acc + p[k], 0);
            const totalCost = rows
              .filter((r) => r.category === "issued" && r.currency === currency)
              .reduce((acc, r) => acc + r.cost_minor, 0);
            expect(sum("purchased")).toBe(totalCost);
            expect(sum("recognized") + sum("breakage") + sum("refunded") + periods.at(-1).deferred_closing).toBe(
              totalCost,
            );
            const contra = rows
              .filter((r) => r.category === "consumed" && r.credit_type === "promotional")
              .reduce((acc, r) => acc - r.amount, 0);
            expect(sum("contra_units")).toBe(contra);
          }

          // Liability at any millisecond agrees with the revenue chain's model and with the credits report.
          const asOf = BASE + asOfOffset;
          const liability = (await report("liability", { as_of: iso(asOf), unit })).json;
          expect(liability.outstanding).toEqual(modelOutstanding(rows, asOf));
          for (const currency of ["USD", "EUR"]) {
            const deferred = modelDeferred(rows, currency, asOf + 1);
            expect(liability.deferred.find((d: any) => d.currency === currency)?.amount ?? 0).toBe(deferred);
          }
          const perAccount = new Map<string, number>();
          for (const r of rows)
            if (r.recorded_at_ms <= asOf) perAccount.set(r.account_id, (perAccount.get(r.account_id) ?? 0) + r.amount);
          expect(liability.accounts).toBe([...perAccount.values()].filter((v) => v !== 0).length);

          // Credits: what was issued less what left, over a window of days, is the change in what is outstanding.
          const dayWindow = { from: iso(BASE), to: iso(BASE + 150 * DAY), period: "day" };
          const credits = (await report("credits", { ...dayWindow, unit })).json;
          let net = 0;
          for (const p of credits.periods) {
            for (const g of p.groups) net += g.issued - g.consumed - g.expired - g.voided - g.refunded - g.transferred;
          }
          const out = modelOutstanding(rows, BASE + 150 * DAY - 1);
          expect(net).toBe(out.promotional + out.compensatory + out.purchased);
        },
      ),
      { numRuns: 25 },
    );
  });
});
