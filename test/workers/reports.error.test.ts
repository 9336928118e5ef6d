/** Issue 8: what the reports refuse, always as problem+json, and the order of the checks (token, role, query). */
import { describe, expect, it } from "vitest";
import { call, expectProblem, uid } from "./helpers";
import { Book, freshUnit, insertJournal, report, t } from "./reports-helpers";

const JAN = { from: "2026-01-01T00:00:00Z", to: "2026-02-01T00:00:00Z" };

describe("bad input: 400 invalid_request", () => {
  const cases: [string, "revenue" | "liability" | "credits", Record<string, string>, RegExp][] = [
    ["currency missing", "revenue", { ...JAN }, /currency/],
    ["currency not ISO 4217", "revenue", { ...JAN, currency: "usd" }, /ISO 4217/],
    ["from missing", "revenue", { to: JAN.to, currency: "USD" }, /from/],
    ["to missing", "credits", { from: JAN.from }, /to/],
    ["from not a time", "credits", { from: "yesterday", to: JAN.to }, /RFC 3339/],
    ["impossible date", "credits", { from: "2026-02-30T00:00:00Z", to: "2026-03-01T00:00:00Z" }, /RFC 3339/],
    ["period unknown", "credits", { ...JAN, period: "week" }, /period/],
    ["format unknown", "revenue", { ...JAN, currency: "USD", format: "xml" }, /format/],
    ["group_by unknown", "credits", { ...JAN, group_by: "account" }, /group_by/],
    ["unknown parameter", "credits", { ...JAN, currency: "USD" }, /unknown field\(s\): currency/],
    ["liability takes no window", "liability", { from: JAN.from }, /unknown field\(s\): from/],
    ["from after to", "credits", { from: JAN.to, to: JAN.from }, /from must be before to/],
    ["empty window", "credits", { from: JAN.from, to: JAN.from }, /from must be before to/],
    ["month not on the 1st", "credits", { from: "2026-01-02T00:00:00Z", to: JAN.to }, /from must be the 1st/],
    ["to not on the 1st", "credits", { from: JAN.from, to: "2026-02-15T00:00:00Z" }, /to must be the 1st/],
    [
      "day not at UTC midnight (an offset that is not UTC midnight)",
      "revenue",
      { from: "2026-01-01T00:00:00+01:00", to: JAN.to, period: "day", currency: "USD" },
      /from must be a UTC midnight/,
    ],
    [
      "367 days",
      "credits",
      { from: "2024-01-01T00:00:00Z", to: "2025-01-02T00:00:00Z", period: "day" },
      /367 periods.*at most 366/,
    ],
    ["367 months", "revenue", { from: "2000-01-01T00:00:00Z", to: "2030-08-01T00:00:00Z", currency: "USD" }, /367/],
    ["as_of in the future", "liability", { as_of: new Date(Date.now() + 60_000).toISOString() }, /future/],
    ["as_of not a time", "liability", { as_of: "now" }, /RFC 3339/],
    ["type unknown", "liability", { type: "gift" }, /type/],
    ["unit malformed", "liability", { unit: "Credits" }, /unit/],
    ["account_id malformed", "credits", { ...JAN, account_id: "a b" }, /account_id/],
    ["parent_id malformed", "credits", { ...JAN, parent_id: "x/y" }, /parent_id/],
    ["source too long", "credits", { ...JAN, source: "s".repeat(257) }, /source/],
    ["campaign empty", "credits", { ...JAN, campaign: "" }, /campaign/],
    ["lone surrogate (the URL makes it U+FFFD)", "credits", { ...JAN, campaign: "a\ud800" }, /U\+FFFD/],
  ];
  for (const [what, name, query, detail] of cases) {
    it(`${name}: ${what}`, async () => {
      const res = await report(name, query);
      expectProblem(res, 400, "invalid_request");
      expect(res.json.detail).toMatch(detail);
    });
  }

  it("percent escapes that are not UTF-8 are refused, not taken as text; a real % is fine", async () => {
    const wtf8 = await call(
      "GET",
      "/v1/reports/credits?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z&source=a%ED%A0%80b",
    );
    expectProblem(wtf8, 400, "invalid_request");
    expect(wtf8.json.detail).toMatch(/UTF-8/);
    const percent = await report("credits", { ...JAN, source: "100%AB" });
    expect(percent.status).toBe(200);
  });

  it("a bad query with format=csv still answers problem+json", async () => {
    const res = await report("credits", { from: JAN.to, to: JAN.from, format: "csv" });
    expectProblem(res, 400, "invalid_request");
  });
});

describe("order of the checks", () => {
  it("no token: 401; a role that may not read reports: 403 before the query is looked at", async () => {
    expectProblem(await report("revenue", { currency: "usd" }, "cg_nope"), 401, "unauthorized");
    const res = await call("GET", "/v1/reports/revenue?currency=usd", undefined, { token: null });
    expectProblem(res, 401, "unauthorized");
    const key = await call("POST", "/v1/api-keys", { name: uid("rep-gw"), role: "gateway" });
    expectProblem(await report("credits", { from: "nonsense" }, key.json.key), 403, "forbidden");
  });

  it("other methods on a report path are 404 not_found", async () => {
    expectProblem(await call("POST", "/v1/reports/revenue", {}), 404, "not_found");
  });
});

describe("bounds", () => {
  it("more than 10 000 rows of groups is refused: narrow the window or the filters", async () => {
    const unit = freshUnit();
    const book = new Book();
    for (let i = 0; i <= 10_000; i++) {
      book.issue({
        account: "acct-many",
        unit,
        type: "promotional",
        amount: 1,
        at: t("2026-01-05T00:00:00Z"),
        campaign: `c${i}`,
      });
    }
    await insertJournal(book.rows);
    const res = await report("credits", { ...JAN, unit, group_by: "campaign" });
    expectProblem(res, 400, "invalid_request");
    expect(res.json.detail).toMatch(/exceeds 10000 rows/);
    const one = await report("credits", { ...JAN, unit, group_by: "campaign", campaign: "c42" });
    expect(one.json.periods[0].groups).toEqual([expect.objectContaining({ key: "c42", issued: 1 })]);
    const byType = await report("credits", { ...JAN, unit });
    expect(byType.json.periods[0].groups).toEqual([
      expect.objectContaining({ key: "promotional", issued: 10_001, accounts: 1 }),
    ]);
  });

  it("a figure past 2^53 − 1 is refused rather than served rounded", async () => {
    const unit = freshUnit();
    const book = new Book();
    for (const account of ["big-1", "big-2"]) {
      book.issue({
        account,
        unit,
        type: "purchased",
        amount: 1,
        at: t("2026-01-05T00:00:00Z"),
        cost: { amount: 9e15, currency: "USD" },
      });
    }
    await insertJournal(book.rows);
    const res = await report("revenue", { ...JAN, unit, currency: "USD" });
    expectProblem(res, 400, "invalid_request");
    expect(res.json.detail).toMatch(/2\^53/);
    const liability = await report("liability", { unit });
    expectProblem(liability, 400, "invalid_request");
    const one = await report("revenue", { ...JAN, unit, currency: "USD", account_id: "big-1" });
    expect(one.json.periods[0].deferred_closing).toBe(9e15);
  });
});
