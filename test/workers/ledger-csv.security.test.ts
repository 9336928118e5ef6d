/**
 * CSV injection: a ledger CSV opened in a spreadsheet must never run a
 * formula that a client put in a reason, a grant id or a debit id. Text that
 * starts with =, +, -, @, tab or CR is served with a leading ' (RFC 4180
 * quoting still applies); numbers stay numbers; the JSON export keeps the text
 * as hashed, and its chain re-verifies with an independent RFC 8785
 * implementation (`canonicalize`) and WebCrypto, not src/ledger/hash.ts.
 */
import canonicalize from "canonicalize";
import { describe, expect, it } from "vitest";
import { parseCsv } from "./csv-helpers";
import { call, debit, grant, uid } from "./helpers";

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

const FORMULA_REASONS = ['=HYPERLINK("http://x","y")', "+1", "-2", "@SUM(A1)", "\tx", "\rx"];
const NUMERIC = new Set(["seq", "amount", "held_delta"]);

describe("ledger CSV: formulas are neutralised, numbers are not", () => {
  it("prefixes text that starts like a formula with ', keeps amounts numeric, and the JSON chain verifies", async () => {
    const a = uid("csvsec");
    for (const [i, reason] of FORMULA_REASONS.entries()) {
      await grant(a, { grant_id: `g${i}`, amount: 10, priority: 100, reason });
    }
    // Ids may start with "-" too: the grant drawn first and the debit's id (its entries' ref).
    await grant(a, { grant_id: "-g7", amount: 100, priority: 1, reason: "plain text" });
    const d = await debit(a, 5, { debit_id: "-d1" });
    expect(d.status).toBe(200);

    const json = await call("GET", `/v1/accounts/${a}/ledger?limit=1000`);
    expect(json.status).toBe(200);
    const entries = json.json.entries as Record<string, string | number | null>[];
    expect(entries).toHaveLength(FORMULA_REASONS.length + 2);

    const csv = await call("GET", `/v1/accounts/${a}/ledger?format=csv`);
    expect(csv.status).toBe(200);
    expect(csv.headers.get("content-type")).toContain("text/csv");
    // RFC 4180 quoting still applies, over the prefixed text.
    expect(csv.text).toContain(`"'=HYPERLINK(""http://x"",""y"")"`);
    expect(csv.text).toContain(`"'\rx"`);
    const [header, ...rows] = parseCsv(csv.text);
    expect(header?.slice(0, 3)).toEqual(["account_id", "seq", "entry_id"]);
    const cols = header as string[];
    const byRow = rows.map((r) => Object.fromEntries(cols.map((c, i) => [c, r[i]])));
    expect(byRow).toHaveLength(entries.length);

    // Each reason comes out behind a '.
    for (const [i, reason] of FORMULA_REASONS.entries()) {
      const row = byRow.find((r) => r.grant_id === `g${i}`);
      expect(row?.reason, JSON.stringify(reason)).toBe(`'${reason}`);
    }
    const debitRow = byRow.find((r) => r.kind === "debit");
    expect(debitRow).toMatchObject({ amount: "-5", ref: "'-d1", grant_id: "'-g7" });
    expect(byRow.find((r) => r.kind === "grant" && r.reason === "plain text")?.grant_id).toBe("'-g7");

    // Cell by cell against the JSON export: numbers as written, text prefixed only when it starts like a formula.
    for (const [i, e] of entries.entries()) {
      for (const col of cols) {
        const v = e[col];
        const cell = byRow[i]?.[col];
        if (NUMERIC.has(col)) {
          expect(typeof v).toBe("number");
          expect(cell).toBe(String(v));
        } else if (v === null) expect(cell).toBe("");
        else {
          expect(typeof v).toBe("string");
          expect(cell, `${col} of seq ${e.seq}`).toBe(/^[=+\-@\t\r]/.test(v as string) ? `'${v}` : v);
          expect(cell).not.toMatch(/^[=+\-@\t\r]/);
        }
      }
    }

    // The JSON export keeps the text as hashed, and its chain re-verifies.
    expect(entries.map((e) => e.reason)).toEqual([...FORMULA_REASONS, "plain text", null]);
    let prev = "0".repeat(64);
    for (const e of entries) {
      expect(e.prev_hash).toBe(prev);
      const { hash, ...rest } = e;
      expect(await sha256Hex(canonicalize(rest) as string)).toBe(hash);
      prev = hash as string;
    }
  });
});
