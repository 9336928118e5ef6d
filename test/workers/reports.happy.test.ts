/**
 * Issue 8, the three finance reports over a hand-made history whose every
 * figure is worked out below. Rows go straight into D1 (reports-helpers.ts);
 * each test file's rows have their own unit, so other suites' journal rows
 * never show.
 *
 * Lots (unit U):
 *   L1 a1 purchased 1 000 cr, USD 10 000, tax DE 1 900, source stripe   2026-01-10T09:00
 *   L2 a2 promotional 500, campaign spring, source =HYPERLINK("x","y")  2026-01-12
 *   L3 a2 purchased 3 cr, EUR 100, tax FR 7                             2026-01-15
 *   L4 a1 compensatory 10                                               2026-01-20
 *   L5 a3 purchased 50 cr, USD 500, tax US-CA 50 (a3 outside the tree)  2026-02-01
 *   L6 a2 purchased 10 cr, USD 1 000                                    2026-03-01
 * Movements (cost by floor(C·x / A)):
 *   M1 L1 debit −300 (3 000) 01-15T09:00 · M2 L3 debit −1 (33) 01-20 · M3 L2 debit −200 02-03
 *   M4 L1 invoice −100 (1 000) 02-10 · M5 L2 expired −300 02-28
 *   M6 L1 invoice.reversal +50 (−500) 03-02T23:59:59.999 · M7 L4 voided −4 03-03T00:00
 *   M8 L4 debit −3 03-03T12:00 · M9 L1 refunded −200 (2 000) 03-03T18:00
 *   M10 L5 expired −50 (500) 03-31 · M11 L6 voided −10 (1 000) 03-20
 */
import { beforeAll, describe, expect, it } from "vitest";
import { periodStart } from "../../src/reports/periods";
import { parseCsv } from "./csv-helpers";
import { advanceClock, call, expectProblem, grant, runAlarm, uid } from "./helpers";
import { drainVia } from "./outbox-helpers";
import { Book, DAY, freshUnit, insertAccounts, insertJournal, report, t } from "./reports-helpers";

const U = freshUnit();
const root = uid("root");
const a1 = uid("a1");
const a2 = uid("a2");
const a3 = uid("a3");
const book = new Book();

beforeAll(async () => {
  await insertAccounts([
    { id: root, parent: null },
    { id: a1, parent: root },
    { id: a2, parent: a1 }, // a grandchild: parent_id reaches every level
    { id: a3, parent: null },
  ]);
  const L1 = book.issue({
    account: a1,
    unit: U,
    type: "purchased",
    amount: 1000,
    at: t("2026-01-10T09:00:00Z"),
    cost: { amount: 10_000, currency: "USD", tax: { amount: 1900, jurisdiction: "DE" } },
    source: "stripe",
  });
  const L2 = book.issue({
    account: a2,
    unit: U,
    type: "promotional",
    amount: 500,
    at: t("2026-01-12T00:00:00Z"),
    campaign: "spring",
    source: '=HYPERLINK("x","y")',
  });
  const L3 = book.issue({
    account: a2,
    unit: U,
    type: "purchased",
    amount: 3,
    at: t("2026-01-15T00:00:00Z"),
    cost: { amount: 100, currency: "EUR", tax: { amount: 7, jurisdiction: "FR" } },
  });
  const L4 = book.issue({ account: a1, unit: U, type: "compensatory", amount: 10, at: t("2026-01-20T00:00:00Z") });
  const L5 = book.issue({
    account: a3,
    unit: U,
    type: "purchased",
    amount: 50,
    at: t("2026-02-01T00:00:00Z"),
    cost: { amount: 500, currency: "USD", tax: { amount: 50, jurisdiction: "US-CA" } },
  });
  const L6 = book.issue({
    account: a2,
    unit: U,
    type: "purchased",
    amount: 10,
    at: t("2026-03-01T00:00:00Z"),
    cost: { amount: 1000, currency: "USD" },
  });
  book.move(L1, "debit", -300, t("2026-01-15T09:00:00Z"));
  book.move(L3, "debit", -1, t("2026-01-20T00:00:00Z"));
  book.move(L2, "debit", -200, t("2026-02-03T00:00:00Z"));
  book.move(L1, "invoice", -100, t("2026-02-10T00:00:00Z"));
  book.move(L2, "grant.expired", -300, t("2026-02-28T00:00:00Z"));
  book.move(L1, "invoice.reversal", 50, t("2026-03-02T23:59:59.999Z"));
  book.move(L4, "grant.voided", -4, t("2026-03-03T00:00:00.000Z"));
  book.move(L4, "debit", -3, t("2026-03-03T12:00:00.000Z"));
  book.move(L1, "grant.refunded", -200, t("2026-03-03T18:00:00.000Z"));
  book.move(L6, "grant.voided", -10, t("2026-03-20T00:00:00Z"));
  book.move(L5, "grant.expired", -50, t("2026-03-31T00:00:00Z"));
  await insertJournal(book.rows);
});

const Q1 = { from: "2026-01-01T00:00:00Z", to: "2026-04-01T00:00:00Z", period: "month" };

describe("GET /v1/reports/revenue", () => {
  it("chains deferred revenue month by month, breakage = expired + voided, tax apart by jurisdiction", async () => {
    const res = await report("revenue", { ...Q1, currency: "USD", unit: U });
    expect(res.status).toBe(200);
    const zero = { breakage: 0, refunded: 0, transferred: 0, contra_units: 0, compensatory_units: 0 };
    expect(res.json).toEqual({
      currency: "USD",
      periods: [
        {
          ...zero,
          start: "2026-01-01T00:00:00.000Z",
          end: "2026-02-01T00:00:00.000Z",
          deferred_opening: 0,
          purchased: 10_000,
          recognized: 3000,
          deferred_closing: 7000,
          tax: [{ jurisdiction: "DE", amount: 1900 }],
        },
        {
          ...zero,
          start: "2026-02-01T00:00:00.000Z",
          end: "2026-03-01T00:00:00.000Z",
          deferred_opening: 7000,
          purchased: 500,
          recognized: 1000,
          deferred_closing: 6500,
          contra_units: 200,
          tax: [{ jurisdiction: "US-CA", amount: 50 }],
        },
        {
          ...zero,
          start: "2026-03-01T00:00:00.000Z",
          end: "2026-04-01T00:00:00.000Z",
          deferred_opening: 6500,
          purchased: 1000,
          recognized: -500, // the reversal undoes recognition in its own period
          breakage: 1500, // L5 expired (500) + L6 voided (1 000)
          refunded: 2000,
          deferred_closing: 4500,
          compensatory_units: 3,
          tax: [],
        },
      ],
    });
  });

  it("keeps each currency apart; units do not depend on the currency", async () => {
    const res = await report("revenue", { ...Q1, currency: "EUR", unit: U });
    expect(res.json.periods.map((p: any) => [p.purchased, p.recognized, p.deferred_closing, p.tax])).toEqual([
      [100, 33, 67, [{ jurisdiction: "FR", amount: 7 }]],
      [0, 0, 67, []],
      [0, 0, 67, []],
    ]);
    expect(res.json.periods.map((p: any) => [p.contra_units, p.compensatory_units])).toEqual([
      [0, 0],
      [200, 0],
      [0, 3],
    ]);
    const none = await report("revenue", { ...Q1, currency: "JPY", unit: U });
    expect(none.json.periods.every((p: any) => p.deferred_closing === 0 && p.purchased === 0)).toBe(true);
  });

  it("opens a window from the whole history before it, by day", async () => {
    const res = await report("revenue", {
      from: "2026-03-02T00:00:00Z",
      to: "2026-03-05T00:00:00Z",
      period: "day",
      currency: "USD",
      unit: U,
    });
    expect(
      res.json.periods.map((p: any) => [
        p.start.slice(0, 10),
        p.deferred_opening,
        p.recognized,
        p.refunded,
        p.deferred_closing,
      ]),
    ).toEqual([
      ["2026-03-02", 7500, -500, 0, 8000],
      ["2026-03-03", 8000, 0, 2000, 6000],
      ["2026-03-04", 6000, 0, 0, 6000],
    ]);
  });

  it("filters by parent (the account and every descendant), account, type and source", async () => {
    const tree = await report("revenue", { ...Q1, currency: "USD", unit: U, parent_id: root });
    expect(tree.json.periods.map((p: any) => [p.purchased, p.breakage, p.deferred_closing])).toEqual([
      [10_000, 0, 7000],
      [0, 0, 6000],
      [1000, 1000, 4500],
    ]);
    const one = await report("revenue", { ...Q1, currency: "USD", unit: U, account_id: a3 });
    expect(one.json.periods.map((p: any) => p.deferred_closing)).toEqual([0, 500, 0]);
    // both: the account must be in the tree
    const both = await report("revenue", { ...Q1, currency: "USD", unit: U, account_id: a3, parent_id: root });
    expect(both.json.periods.map((p: any) => p.purchased)).toEqual([0, 0, 0]);
    const promo = await report("revenue", { ...Q1, currency: "USD", unit: U, type: "promotional" });
    expect(promo.json.periods.map((p: any) => [p.purchased, p.contra_units, p.compensatory_units])).toEqual([
      [0, 0, 0],
      [0, 200, 0],
      [0, 0, 0],
    ]);
    const stripe = await report("revenue", { ...Q1, currency: "USD", unit: U, source: "stripe" });
    expect(stripe.json.periods.map((p: any) => p.deferred_closing)).toEqual([7000, 6000, 4500]);
  });

  it("CSV: a header, one row per period, numbers as numbers, a tax column per jurisdiction", async () => {
    const res = await report("revenue", { ...Q1, currency: "USD", unit: U, format: "csv" });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    expect(parseCsv(res.text).map((r) => r.join(","))).toEqual([
      "currency,start,end,deferred_opening,purchased,recognized,breakage,refunded,transferred,deferred_closing," +
        "contra_units,compensatory_units,tax_DE,tax_US-CA",
      "USD,2026-01-01T00:00:00.000Z,2026-02-01T00:00:00.000Z,0,10000,3000,0,0,0,7000,0,0,1900,0",
      "USD,2026-02-01T00:00:00.000Z,2026-03-01T00:00:00.000Z,7000,500,1000,0,0,0,6500,200,0,0,50",
      "USD,2026-03-01T00:00:00.000Z,2026-04-01T00:00:00.000Z,6500,1000,-500,1500,2000,0,4500,0,3,0,0",
    ]);
  });
});

describe("GET /v1/reports/liability", () => {
  const at = (as_of: string, extra: Record<string, string> = {}) => report("liability", { as_of, unit: U, ...extra });

  it("outstanding by type, deferred per currency and accounts, exactly at as_of (partial day from the journal)", async () => {
    const res = await at("2026-03-03T12:00:00.000Z");
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      as_of: "2026-03-03T12:00:00.000Z",
      unit: U,
      // L1 650 + L3 2 + L5 50 + L6 10; L4 10 − 4 − 3 (M8 recorded exactly at as_of counts)
      outstanding: { promotional: 0, compensatory: 3, purchased: 712 },
      deferred: [
        { currency: "EUR", amount: 67 },
        { currency: "USD", amount: 8000 },
      ],
      accounts: 3,
    });
  });

  it("is exact at every edge of a day", async () => {
    const cases: [string, number, number, number][] = [
      // as_of, purchased, compensatory, USD deferred
      ["2026-03-02T23:59:59.998Z", 662, 10, 7500], // M6 a millisecond later
      ["2026-03-02T23:59:59.999Z", 712, 10, 8000], // M6 at as_of: in the day's rollup, read from the journal
      ["2026-03-03T00:00:00.000Z", 712, 6, 8000], // M7 at midnight: the new day's first row
      ["2026-03-03T11:59:59.999Z", 712, 6, 8000],
      ["2026-03-03T12:00:00.000Z", 712, 3, 8000],
      ["2026-03-03T18:00:00.000Z", 512, 3, 6000], // M9 refunded: 200 credits, 2 000 deferred leave
      ["2026-04-01T00:00:00.000Z", 452, 3, 4500], // the revenue report's March closing
    ];
    for (const [asOf, purchased, compensatory, usd] of cases) {
      const r = (await at(asOf)).json;
      expect({ asOf, purchased: r.outstanding.purchased, compensatory: r.outstanding.compensatory }).toEqual({
        asOf,
        purchased,
        compensatory,
      });
      expect({ asOf, usd: r.deferred.find((d: any) => d.currency === "USD")?.amount ?? 0 }).toEqual({ asOf, usd });
    }
  });

  it("filters, counts only accounts with credits left, and leaves out currencies with nothing deferred", async () => {
    const end = await at("2026-04-01T00:00:00.000Z");
    expect(end.json.accounts).toBe(2); // a3's lot expired
    const tree = await at("2026-04-01T00:00:00.000Z", { parent_id: root });
    expect(tree.json).toMatchObject({ outstanding: { purchased: 452, compensatory: 3 }, accounts: 2 });
    const a3Only = await at("2026-04-01T00:00:00.000Z", { account_id: a3 });
    expect(a3Only.json).toMatchObject({
      outstanding: { promotional: 0, compensatory: 0, purchased: 0 },
      deferred: [],
      accounts: 0,
    });
    const comp = await at("2026-04-01T00:00:00.000Z", { type: "compensatory" });
    expect(comp.json).toMatchObject({ outstanding: { purchased: 0, compensatory: 3 }, deferred: [], accounts: 1 });
    const before = await at("2025-12-31T23:59:59.999Z");
    expect(before.json).toMatchObject({ outstanding: { promotional: 0, compensatory: 0, purchased: 0 }, accounts: 0 });
  });

  it("defaults as_of to now and unit to credits", async () => {
    const before = Date.now();
    const res = await report("liability", {});
    expect(res.status).toBe(200);
    expect(res.json.unit).toBe("credits");
    expect(Date.parse(res.json.as_of)).toBeGreaterThanOrEqual(before - 1000);
  });

  it("CSV: one row, outstanding per type and deferred per currency as columns", async () => {
    const res = await at("2026-03-03T12:00:00.000Z", { format: "csv" });
    expect(res.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    expect(parseCsv(res.text).map((r) => r.join(","))).toEqual([
      "as_of,unit,outstanding_promotional,outstanding_compensatory,outstanding_purchased,deferred_EUR,deferred_USD,accounts",
      `2026-03-03T12:00:00.000Z,${U},0,3,712,67,8000,3`,
    ]);
  });
});

describe("GET /v1/reports/credits", () => {
  it("by type: issued and what became of it, breakage in bps, accounts, average seconds to consume", async () => {
    const res = await report("credits", { ...Q1, unit: U });
    expect(res.status).toBe(200);
    const z = { issued: 0, consumed: 0, expired: 0, voided: 0, refunded: 0, transferred: 0, breakage_bps: 0 };
    const fiveDays = (5 * DAY) / 1000;
    expect(res.json).toEqual({
      unit: U,
      group_by: "type",
      periods: [
        {
          start: "2026-01-01T00:00:00.000Z",
          end: "2026-02-01T00:00:00.000Z",
          groups: [
            { ...z, key: "compensatory", issued: 10, accounts: 1, avg_seconds_to_consume: null },
            { ...z, key: "promotional", issued: 500, accounts: 1, avg_seconds_to_consume: null },
            // M1 and M2 both waited five days
            { ...z, key: "purchased", issued: 1003, consumed: 301, accounts: 2, avg_seconds_to_consume: fiveDays },
          ],
        },
        {
          start: "2026-02-01T00:00:00.000Z",
          end: "2026-03-01T00:00:00.000Z",
          groups: [
            // issued 0 in the period: breakage_bps 0
            { ...z, key: "promotional", consumed: 200, expired: 300, accounts: 1, avg_seconds_to_consume: 22 * 86_400 },
            {
              ...z,
              key: "purchased",
              issued: 50,
              consumed: 100,
              accounts: 2,
              avg_seconds_to_consume: (t("2026-02-10T00:00:00Z") - t("2026-01-10T09:00:00Z")) / 1000,
            },
          ],
        },
        {
          start: "2026-03-01T00:00:00.000Z",
          end: "2026-04-01T00:00:00.000Z",
          groups: [
            {
              ...z,
              key: "compensatory",
              consumed: 3,
              voided: 4,
              accounts: 1,
              avg_seconds_to_consume: (t("2026-03-03T12:00:00Z") - t("2026-01-20T00:00:00Z")) / 1000,
            },
            {
              ...z,
              key: "purchased",
              issued: 10,
              consumed: -50, // a reversal gave 50 back
              expired: 50,
              voided: 10,
              refunded: 200,
              breakage_bps: 50_000, // expired ÷ issued of the same period
              accounts: 3,
              avg_seconds_to_consume: null,
            },
          ],
        },
      ],
    });
  });

  it("by campaign and by source: null for lots without one", async () => {
    const jan = { from: "2026-01-01T00:00:00Z", to: "2026-02-01T00:00:00Z", period: "month", unit: U };
    const campaign = await report("credits", { ...jan, group_by: "campaign" });
    expect(campaign.json.periods[0].groups.map((g: any) => [g.key, g.issued, g.accounts])).toEqual([
      [null, 1013, 2],
      ["spring", 500, 1],
    ]);
    const source = await report("credits", { ...jan, group_by: "source", campaign: "spring" });
    expect(source.json.periods[0].groups.map((g: any) => [g.key, g.issued])).toEqual([['=HYPERLINK("x","y")', 500]]);
  });

  it("by day: periods without movements have no groups", async () => {
    const res = await report("credits", {
      from: "2026-01-10T00:00:00Z",
      to: "2026-01-13T00:00:00Z",
      period: "day",
      unit: U,
    });
    expect(res.json.periods.map((p: any) => [p.start.slice(0, 10), p.groups.map((g: any) => g.key)])).toEqual([
      ["2026-01-10", ["purchased"]],
      ["2026-01-11", []],
      ["2026-01-12", ["promotional"]],
    ]);
  });

  it("CSV: one row per period and group; formula text neutralised, quoted; null as an empty field", async () => {
    const res = await report("credits", { ...Q1, unit: U, group_by: "source", format: "csv" });
    const [header, ...rows] = parseCsv(res.text);
    expect(header?.join(",")).toBe(
      "unit,group_by,start,end,key,issued,consumed,expired,voided,refunded,transferred,breakage_bps,accounts," +
        "avg_seconds_to_consume",
    );
    expect(rows.map((r) => [r[2]?.slice(0, 7), r[4], r[5], r[13]])).toEqual([
      ["2026-01", "", "13", "432000"], // M2: L3 has no source
      ["2026-01", `'=HYPERLINK("x","y")`, "500", ""],
      ["2026-01", "stripe", "1000", "432000"],
      ["2026-02", "", "50", ""],
      ["2026-02", `'=HYPERLINK("x","y")`, "0", "1900800"],
      ["2026-02", "stripe", "0", String((t("2026-02-10T00:00:00Z") - t("2026-01-10T09:00:00Z")) / 1000)],
      ["2026-03", "", "10", String((t("2026-03-03T12:00:00Z") - t("2026-01-20T00:00:00Z")) / 1000)],
      ["2026-03", "stripe", "0", ""],
    ]);
    // the raw text: quoted, with the ' inside the quotes
    expect(res.text).toContain(`,"'=HYPERLINK(""x"",""y"")",500,`);
  });
});

describe("roles", () => {
  it("admin, finance and viewer read reports; support, marketing and gateway get 403", async () => {
    for (const role of ["finance", "viewer", "support", "marketing", "gateway"]) {
      const key = await call("POST", "/v1/api-keys", { name: uid(`rep-${role}`), role, max_grant_amount: null });
      expect(key.status).toBe(201);
      for (const [name, q] of [
        ["revenue", { ...Q1, currency: "USD", unit: U }],
        ["liability", { unit: U }],
        ["credits", { ...Q1, unit: U }],
      ] as const) {
        const res = await report(name, q, key.json.key);
        if (role === "finance" || role === "viewer")
          expect({ role, name, status: res.status }).toEqual({ role, name, status: 200 });
        else expectProblem(res, 403, "forbidden");
      }
    }
  });
});

/**
 * The same reports over a history the gate wrote itself: grants, debits, an
 * invoice and its void, a refund and an expiry through the API, the journal
 * rows written by each account's Durable Object and shipped by its outbox
 * (the figures are those of test/workers/journal.accounting.test.ts).
 */
describe("end to end: a history written through the API", () => {
  it("revenue, liability and credits report what the gate did", async () => {
    const unit = freshUnit();
    const parent = uid("e2e-root");
    const a = uid("e2e");
    expect((await call("PUT", `/v1/accounts/${parent}`, {})).status).toBe(201);
    expect((await call("PUT", `/v1/accounts/${a}`, { parent_id: parent })).status).toBe(201);
    await grant(a, { grant_id: "promo", unit, amount: 200, type: "promotional", priority: 0, campaign: "launch" });
    await grant(a, {
      grant_id: "p1",
      unit,
      amount: 1000,
      priority: 1,
      source: "stripe",
      cost_basis: { amount: 10_000, currency: "USD", tax: { amount: 1_900, jurisdiction: "DE" } },
    });
    await grant(a, {
      grant_id: "p2",
      unit,
      amount: 300,
      priority: 2,
      cost_basis: { amount: 4_500, currency: "USD" },
      expires_at: new Date(Date.now() + 10 * DAY).toISOString(),
    });
    for (const [id, amount] of [
      ["d1", 250],
      ["d2", 333],
    ] as const) {
      expect((await call("POST", `/v1/accounts/${a}/debits`, { debit_id: id, amount, unit })).status).toBe(200);
    }
    const inv = await call("POST", `/v1/accounts/${a}/invoices`, {
      invoice_id: "inv-1",
      lines: [{ unit, amount: 100 }],
    });
    expect(inv.status, inv.text).toBe(201);
    const refund = await call("POST", `/v1/accounts/${a}/grants/p1/refund`, {
      refund_id: "r1",
      amount: 200,
      reason: "x",
    });
    expect(refund.status, refund.text).toBe(200);
    expect((await call("POST", `/v1/accounts/${a}/invoices/inv-1/void`, { reason: "error" })).status).toBe(200);
    expect(await drainVia(a)).toEqual({ ok: true, pending: 0 });

    // Liability now, before p2 expires: p1 417 + p2 300 credits; 14 500 − 3 830 − 2 000 deferred.
    const now = await report("liability", { unit, parent_id: parent });
    expect(now.json).toMatchObject({
      unit,
      outstanding: { promotional: 0, compensatory: 0, purchased: 717 },
      deferred: [{ currency: "USD", amount: 8_670 }],
      accounts: 1,
    });

    await advanceClock(a, 11 * DAY);
    await runAlarm(a); // writes p2's expiry, recorded on the account's (advanced) clock
    expect(await drainVia(a)).toEqual({ ok: true, pending: 0 });

    // Two months from this one cover the expiry, eleven days ahead.
    const from = periodStart(Date.now(), "month");
    const to = Date.UTC(new Date(from).getUTCFullYear(), new Date(from).getUTCMonth() + 2, 1);
    const window = { from: new Date(from).toISOString(), to: new Date(to).toISOString(), period: "month", unit };
    const revenue = (await report("revenue", { ...window, currency: "USD", account_id: a })).json;
    const sum = (k: string) => revenue.periods.reduce((acc: number, p: any) => acc + p[k], 0);
    expect(revenue.periods[0].deferred_opening).toBe(0);
    expect({
      purchased: sum("purchased"),
      recognized: sum("recognized"),
      breakage: sum("breakage"),
      refunded: sum("refunded"),
      contra_units: sum("contra_units"),
      closing: revenue.periods.at(-1).deferred_closing,
      tax: revenue.periods.flatMap((p: any) => p.tax),
    }).toEqual({
      purchased: 14_500,
      recognized: 3_830,
      breakage: 4_500,
      refunded: 2_000,
      contra_units: 200,
      closing: 4_170,
      tax: [{ jurisdiction: "DE", amount: 1_900 }],
    });

    const credits = (await report("credits", { ...window, group_by: "type", parent_id: parent })).json;
    const totals = new Map<string, any>();
    for (const p of credits.periods) {
      for (const g of p.groups) {
        const t = totals.get(g.key) ?? { issued: 0, consumed: 0, expired: 0, refunded: 0 };
        for (const k of ["issued", "consumed", "expired", "refunded"]) t[k] += g[k];
        totals.set(g.key, t);
      }
    }
    expect(Object.fromEntries(totals)).toEqual({
      promotional: { issued: 200, consumed: 200, expired: 0, refunded: 0 },
      purchased: { issued: 1_300, consumed: 383, expired: 300, refunded: 200 },
    });

    const csv = parseCsv((await report("revenue", { ...window, currency: "USD", account_id: a, format: "csv" })).text);
    expect(csv.length).toBe(1 + revenue.periods.length);
    expect(csv[0]).toContain("tax_DE");
  });
});
