/**
 * The pure parts of the legacy migration (src/ledger/migration.ts): NDJSON
 * lines, the request-wide checks, RFC 4180 CSV and its mapping to legacy
 * lines, legacy balance exports, the dual-run comparison (figures worked by
 * hand) and the split of a big file into requests; a fast-check property
 * pins the CSV parser against a reference encoder and the split against the
 * bounds.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  checkLines,
  chunkLines,
  IMPORT_ERRORS_MAX,
  type ImportBounds,
  type Keyed,
  type LineCheck,
  legacyIdOf,
  ndjsonLines,
  termsKey,
} from "../../src/ledger/migration";
import { csvToLines, dualRun, gateHolding, parseCsv, parseLegacyBalances } from "../../src/ledger/migration-files";

/** A check that accepts any object with string legacy_id and account_id. */
const keyed = (raw: unknown): LineCheck<Keyed> => {
  const r = raw as Partial<Keyed> | null;
  if (typeof r?.legacy_id !== "string" || typeof r.account_id !== "string") return { ok: false, reason: "no ids" };
  return { ok: true, value: { legacy_id: r.legacy_id, account_id: r.account_id } };
};
const line = (n: number, v: unknown) => ({ line: n, text: JSON.stringify(v) });

describe("ndjsonLines", () => {
  it("numbers physical lines, skips blank ones anywhere, takes CRLF", () => {
    expect(ndjsonLines('{"a":1}\r\n\n  \n{"b":2}\n\n')).toEqual([
      { line: 1, text: '{"a":1}' },
      { line: 4, text: '{"b":2}' },
    ]);
    expect(ndjsonLines("")).toEqual([]);
    expect(ndjsonLines("x")).toEqual([{ line: 1, text: "x" }]);
  });

  it("refuses more than maxLines lines, blank ones included, but not blank lines at the end", () => {
    expect(ndjsonLines("a\nb\nc", 3)).toHaveLength(3);
    expect(ndjsonLines("a\nb\nc\n\n\n  \n", 3)).toHaveLength(3);
    expect(ndjsonLines("a\nb\nc\nd", 3)).toBeNull();
    expect(ndjsonLines("\n\n\nd", 3)).toBeNull();
  });
});

describe("checkLines", () => {
  const bounds: ImportBounds = { maxLines: 100, maxAccounts: 2, maxPerAccount: 2 };

  it("passes good lines in order with their numbers", () => {
    const out = checkLines(
      [line(1, { legacy_id: "l1", account_id: "a" }), line(3, { legacy_id: "l2", account_id: "b" })],
      keyed,
      bounds,
    );
    expect(out).toMatchObject({ invalid: 0, errors: [], accounts: 2 });
    expect(out.lines.map((l) => l.line)).toEqual([1, 3]);
  });

  it("names each bad line: not JSON, refused by the check (legacy_id when readable), duplicate pair, bounds", () => {
    const out = checkLines(
      [
        { line: 1, text: "{oops" },
        line(2, { legacy_id: "x", account_id: 7 }),
        line(3, { legacy_id: "l1", account_id: "a" }),
        line(4, { legacy_id: "l1", account_id: "a" }),
        line(5, { legacy_id: "l1", account_id: "b" }), // another account: another lot
        line(6, { legacy_id: "l2", account_id: "c" }), // a third account
        line(7, { legacy_id: "l3", account_id: "a" }),
        line(8, { legacy_id: "l4", account_id: "a" }), // a's third line
        { line: 9, text: JSON.stringify({ legacy_id: "big", account_id: "a", pad: "x".repeat(5000) }) },
      ],
      keyed,
      bounds,
    );
    expect(out.errors.map((e) => [e.line, e.legacy_id])).toEqual([
      [1, null],
      [2, "x"],
      [4, "l1"],
      [6, "l2"],
      [8, "l4"],
      [9, null],
    ]);
    expect(out.errors[2]?.reason).toBe("legacy_id l1 of account a is already on line 3");
    expect(out.errors[3]?.reason).toMatch(/more than 2 accounts/);
    expect(out.errors[4]?.reason).toMatch(/more than 2 lines of account a/);
    expect(out.errors[5]?.reason).toMatch(/longer than 4096/);
    expect(out.invalid).toBe(6);
  });

  it("lists at most IMPORT_ERRORS_MAX errors and counts them all", () => {
    const many = Array.from({ length: 250 }, (_, i) => ({ line: i + 1, text: "nope" }));
    const out = checkLines(many, keyed);
    expect(out.errors).toHaveLength(IMPORT_ERRORS_MAX);
    expect(out.invalid).toBe(250);
  });

  it("legacyIdOf reads an id-shaped legacy_id only", () => {
    expect(legacyIdOf({ legacy_id: "L-1" })).toBe("L-1");
    expect(legacyIdOf({ legacy_id: "a b" })).toBeNull();
    expect(legacyIdOf({ legacy_id: 5 })).toBeNull();
    expect(legacyIdOf(null)).toBeNull();
    expect(legacyIdOf([1])).toBeNull();
  });

  it("termsKey does not depend on key order", () => {
    const t = {
      account_id: "a",
      legacy_id: "l",
      amount: 1,
      unit: "credits",
      type: "purchased",
      priority: 100,
      effective_at_ms: null,
      expires_at_ms: 5,
      reason: null,
      cost_basis: { amount: 1, currency: "USD" },
    };
    const reversed = Object.fromEntries(Object.entries(t).reverse()) as typeof t;
    expect(termsKey(reversed)).toBe(termsKey(t));
    expect(termsKey({ ...t, amount: 2 })).not.toBe(termsKey(t));
  });
});

describe("parseCsv (RFC 4180)", () => {
  it("quoted fields with commas, doubled quotes and line breaks; CRLF and LF; BOM; empty fields; blank lines", () => {
    const text = '\uFEFFa,b,c\r\n"x, y","say ""hi""","two\nlines"\n,,\n\n1,2,3';
    const out = parseCsv(text, 10);
    expect(out).toEqual({
      ok: true,
      rows: [
        { line: 1, fields: ["a", "b", "c"] },
        { line: 2, fields: ["x, y", 'say "hi"', "two\nlines"] },
        { line: 4, fields: ["", "", ""] },
        { line: 6, fields: ["1", "2", "3"] },
      ],
    });
  });

  it("refuses what RFC 4180 does not allow, naming the line", () => {
    expect(parseCsv('a,b\n"open,1\n', 10)).toMatchObject({
      ok: false,
      error: { line: 2, reason: "a quoted field is not closed" },
    });
    expect(parseCsv('a\nx"y\n', 10)).toMatchObject({
      ok: false,
      error: { line: 2, reason: "a quote inside an unquoted field" },
    });
    expect(parseCsv('a\n"x"y\n', 10)).toMatchObject({
      ok: false,
      error: { line: 2, reason: "text after a closing quote" },
    });
    expect(parseCsv("a\nb\nc\n", 2)).toMatchObject({ ok: false, error: { line: 3 } });
  });

  it("round-trips any table through an RFC 4180 encoder (property)", () => {
    const cell = fc.string({ unit: fc.constantFrom("a", "b", ",", '"', "\n", "\r\n", " ", "é", "1") });
    const table = fc
      .integer({ min: 1, max: 4 })
      .chain((w) => fc.array(fc.array(cell, { minLength: w, maxLength: w }), { minLength: 1, maxLength: 6 }));
    const encode = (v: string) => (/[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
    fc.assert(
      fc.property(table, fc.boolean(), (rows, crlf) => {
        // A record of one empty field is a blank line, which the parser skips: the reference does too.
        const expected = rows.filter((r) => !(r.length === 1 && r[0] === ""));
        const text = rows.map((r) => r.map(encode).join(",")).join(crlf ? "\r\n" : "\n");
        const out = parseCsv(text, 100);
        expect(out.ok).toBe(true);
        if (out.ok) expect(out.rows.map((r) => r.fields)).toEqual(expected);
      }),
    );
  });
});

describe("csvToLines", () => {
  const HEADER =
    "legacy_id,account_id,amount,unit,type,expires_at,reason,cost_basis_amount,cost_basis_currency,cost_basis_tax_amount,cost_basis_tax_jurisdiction";

  it("maps columns to the NDJSON members: integers as numbers, empty cells left out, cost_basis gathered", () => {
    const text = `${HEADER}\nL1,a,100,,purchased,,,1000,USD,190,DE\nL2,b,5,minutes,compensatory,2099-01-01T00:00:00Z,"late, sorry",,,,\n`;
    expect(csvToLines(text)).toEqual({
      ok: true,
      lines: [
        {
          line: 2,
          value: {
            legacy_id: "L1",
            account_id: "a",
            amount: 100,
            type: "purchased",
            cost_basis: { amount: 1000, currency: "USD", tax: { amount: 190, jurisdiction: "DE" } },
          },
        },
        {
          line: 3,
          value: {
            legacy_id: "L2",
            account_id: "b",
            amount: 5,
            unit: "minutes",
            type: "compensatory",
            expires_at: "2099-01-01T00:00:00Z",
            reason: "late, sorry",
          },
        },
      ],
    });
  });

  it("leaves a cell that is not an integer as text, for the gate to refuse in its own words", () => {
    const out = csvToLines(
      "legacy_id,account_id,amount,type\nL1,a,1.5,purchased\nL2,a,1e3,purchased\nL3,a,99999999999999999,purchased\n",
    );
    expect(out.ok && out.lines.map((l) => l.value.amount)).toEqual(["1.5", "1e3", "99999999999999999"]);
  });

  it("refuses a header with unknown, repeated or missing columns, and records of the wrong width", () => {
    expect(csvToLines("legacy_id,account_id,amount,type,colour\n")).toMatchObject({
      ok: false,
      errors: [{ line: 1, reason: "unknown column(s): colour" }],
    });
    expect(csvToLines("legacy_id,account_id,amount,type,type\n")).toMatchObject({
      ok: false,
      errors: [{ reason: "a column is named twice" }],
    });
    expect(csvToLines("legacy_id,account_id,amount\n")).toMatchObject({
      ok: false,
      errors: [{ reason: "missing column(s): type" }],
    });
    expect(csvToLines("")).toMatchObject({ ok: false, errors: [{ reason: "no header row" }] });
    expect(
      csvToLines("legacy_id,account_id,amount,type\nL1,a,1\nL2,a,1,purchased\nL3,a,1,purchased,x\n"),
    ).toMatchObject({
      ok: false,
      errors: [
        { line: 2, legacy_id: "L1", reason: "3 fields where the header has 4" },
        { line: 4, legacy_id: "L3", reason: "5 fields where the header has 4" },
      ],
    });
  });
});

describe("parseLegacyBalances", () => {
  it("reads account_id, unit (default credits) and integer balances, zero and negative included", () => {
    const out = parseLegacyBalances("account_id,unit,balance\na,credits,700\nb,,0\nc,minutes,-20\n");
    expect(out).toEqual({
      ok: true,
      rows: [
        { line: 2, account_id: "a", unit: "credits", balance: 700 },
        { line: 3, account_id: "b", unit: "credits", balance: 0 },
        { line: 4, account_id: "c", unit: "minutes", balance: -20 },
      ],
    });
    expect(parseLegacyBalances("balance,account_id\n5,a\n")).toMatchObject({
      ok: true,
      rows: [{ account_id: "a", unit: "credits", balance: 5 }],
    });
  });

  it("refuses bad ids, units, balances, repeats and headers, naming the line", () => {
    const out = parseLegacyBalances(
      "account_id,unit,balance\na b,credits,1\na,Credits,1\na,credits,1.5\na,credits,3\na,credits,4\n",
    );
    expect(out.ok).toBe(false);
    if (!out.ok) {
      expect(out.errors.map((e) => e.line)).toEqual([2, 3, 4, 6]);
      expect(out.errors[3]?.reason).toBe("a credits is already on line 5");
    }
    expect(parseLegacyBalances("account,balance\na,1\n").ok).toBe(false);
    expect(parseLegacyBalances("account_id,balance,note\na,1,x\n").ok).toBe(false);
  });
});

describe("the dual run", () => {
  it("reports each divergence with gate − legacy; an unknown account is 0 and matches only a legacy 0", () => {
    // Worked by hand: a matches; b's gate holds 650 where legacy says 700 (−50);
    // c is unknown to the gate with 30 in legacy (−30); d unknown with 0 (a match); e holds 12 more.
    const report = dualRun([
      { account_id: "a", unit: "credits", legacy: 700, gate: 700 },
      { account_id: "b", unit: "credits", legacy: 700, gate: 650 },
      { account_id: "c", unit: "credits", legacy: 30, gate: null },
      { account_id: "d", unit: "credits", legacy: 0, gate: null },
      { account_id: "e", unit: "minutes", legacy: -2, gate: 10 },
    ]);
    expect(report).toEqual({
      compared: 5,
      matched: 2,
      diverged: [
        { account_id: "b", unit: "credits", legacy: 700, gate: 650, difference: -50 },
        { account_id: "c", unit: "credits", legacy: 30, gate: null, difference: -30 },
        { account_id: "e", unit: "minutes", legacy: -2, gate: 10, difference: 12 },
      ],
    });
  });

  it("counts held credits as the account's, pending ones not (gateHolding = available + held)", () => {
    expect(gateHolding({ available: 600, held: 50 })).toBe(650);
  });
});

describe("chunkLines", () => {
  const lines = (accounts: string[]) => accounts.map((a, i) => ({ line: i + 1, value: { account_id: a } }));

  it("cuts by lines, accounts, lines per account and bytes, in file order", () => {
    const b: ImportBounds = { maxLines: 3, maxAccounts: 2, maxPerAccount: 2 };
    const ids = (chunks: { line: number }[][]) => chunks.map((c) => c.map((l) => l.line));
    expect(ids(chunkLines(lines(["a", "b", "a", "b"]), () => 10, b))).toEqual([[1, 2, 3], [4]]);
    expect(ids(chunkLines(lines(["a", "b", "c", "a"]), () => 10, b))).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(ids(chunkLines(lines(["a", "a", "a"]), () => 10, b))).toEqual([[1, 2], [3]]);
    expect(ids(chunkLines(lines(["a", "b", "c"]), () => 10, { ...b, maxAccounts: 9 }, 22))).toEqual([[1, 2], [3]]);
    expect(chunkLines([], () => 1)).toEqual([]);
  });

  it("every request respects every bound and the requests hold every line once, in order (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom("a", "b", "c", "d", "e"), { maxLength: 60 }),
        fc.record({
          maxLines: fc.integer({ min: 1, max: 9 }),
          maxAccounts: fc.integer({ min: 1, max: 4 }),
          maxPerAccount: fc.integer({ min: 1, max: 5 }),
        }),
        fc.integer({ min: 11, max: 80 }),
        (accounts, bounds, maxBytes) => {
          const chunks = chunkLines(lines(accounts), () => 10, bounds, maxBytes);
          expect(chunks.flat().map((l) => l.line)).toEqual(accounts.map((_, i) => i + 1));
          for (const c of chunks) {
            expect(c.length).toBeLessThanOrEqual(bounds.maxLines);
            expect(c.length * 11).toBeLessThanOrEqual(maxBytes);
            const per = new Map<string, number>();
            for (const l of c) per.set(l.value.account_id, (per.get(l.value.account_id) ?? 0) + 1);
            expect(per.size).toBeLessThanOrEqual(bounds.maxAccounts);
            for (const n of per.values()) expect(n).toBeLessThanOrEqual(bounds.maxPerAccount);
          }
        },
      ),
    );
  });
});
