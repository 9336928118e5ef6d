/**
 * A CSV export is bounded: at most `limit` entries (1..CSV_MAX_ENTRIES,
 * default CSV_MAX_ENTRIES) per response, and when entries remain the
 * x-next-after-seq header is the after_seq to continue from. JSON pages keep
 * their own bound of LEDGER_PAGE_MAX.
 */
import { describe, expect, it } from "vitest";
import { CSV_MAX_ENTRIES, CSV_PAGE, LEDGER_PAGE_MAX, NEXT_AFTER_SEQ_HEADER } from "../../src/api/ledger";
import { call, expectProblem, grant, ledgerEntries, uid } from "./helpers";

/** The seqs of a CSV response's rows (the second column), and its continuation header. */
async function csvPage(accountId: string, query: string): Promise<{ seqs: number[]; next: string | null }> {
  const res = await call("GET", `/v1/accounts/${accountId}/ledger?format=csv&${query}`);
  expect(res.status, res.text).toBe(200);
  expect(res.headers.get("content-type")).toContain("text/csv");
  const [header, ...rows] = res.text.trimEnd().split("\r\n");
  expect(header?.startsWith("account_id,seq,")).toBe(true);
  return { seqs: rows.map((r) => Number(r.split(",")[1])), next: res.headers.get(NEXT_AFTER_SEQ_HEADER) };
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** An account with `n` entries: one grant, then n - 1 debits. */
async function accountWith(n: number): Promise<string> {
  const a = uid("csvcap");
  await grant(a, { grant_id: "g", amount: 1_000_000 });
  const debits = Array.from({ length: n - 1 }, (_, i) =>
    call("POST", `/v1/accounts/${a}/debits`, { debit_id: `d${i}`, amount: 1 }),
  );
  for (const r of await Promise.all(debits)) expect(r.status).toBe(200);
  return a;
}

describe("CSV export cap", () => {
  it("the bounds are exported constants", () => {
    expect(CSV_MAX_ENTRIES).toBe(100_000);
    expect(CSV_PAGE).toBeLessThanOrEqual(CSV_MAX_ENTRIES);
    expect(LEDGER_PAGE_MAX).toBe(1000);
  });

  it("limit caps a CSV response; x-next-after-seq says where to continue, and following it gets the rest", async () => {
    const a = await accountWith(12);
    expect(await ledgerEntries(a)).toHaveLength(12);

    const p1 = await csvPage(a, "limit=5");
    expect(p1).toEqual({ seqs: range(1, 5), next: "5" });
    const p2 = await csvPage(a, `after_seq=${p1.next}&limit=5`);
    expect(p2).toEqual({ seqs: range(6, 10), next: "10" });
    const p3 = await csvPage(a, `after_seq=${p2.next}&limit=5`);
    expect(p3).toEqual({ seqs: [11, 12], next: null });

    // Following the header without a limit gets every remaining entry, and no header.
    expect(await csvPage(a, `after_seq=${p1.next}`)).toEqual({ seqs: range(6, 12), next: null });
    // A limit that ends exactly at the head: nothing remains, so no header.
    expect(await csvPage(a, "limit=12")).toEqual({ seqs: range(1, 12), next: null });
    expect(await csvPage(a, "limit=11")).toEqual({ seqs: range(1, 11), next: "11" });
    // Past the head: just the header row.
    expect(await csvPage(a, "after_seq=12&limit=5")).toEqual({ seqs: [], next: null });
  });

  it("a limit above one internal page streams several pages and still says where to continue", async () => {
    const n = CSV_PAGE + 3;
    const a = await accountWith(n);
    const first = await csvPage(a, `limit=${CSV_PAGE + 1}`);
    expect(first).toEqual({ seqs: range(1, CSV_PAGE + 1), next: String(CSV_PAGE + 1) });
    expect(await csvPage(a, `after_seq=${first.next}&limit=${CSV_PAGE + 1}`)).toEqual({
      seqs: [CSV_PAGE + 2, CSV_PAGE + 3],
      next: null,
    });
    // Exactly the head, across pages: nothing remains.
    expect(await csvPage(a, `limit=${n}`)).toEqual({ seqs: range(1, n), next: null });
    expect((await csvPage(a, `after_seq=2&limit=${CSV_PAGE + 1}`)).next).toBeNull();
  });

  it("refuses a limit outside its format's range with 400 problem+json", async () => {
    const a = await accountWith(2);
    const base = `/v1/accounts/${a}/ledger`;
    for (const q of [
      `format=csv&limit=${CSV_MAX_ENTRIES + 1}`,
      "format=csv&limit=0",
      "format=csv&limit=-1",
      "format=csv&limit=abc",
      "format=csv&limit=",
      `limit=${LEDGER_PAGE_MAX + 1}`,
      `format=json&limit=${CSV_MAX_ENTRIES}`,
    ]) {
      expectProblem(await call("GET", `${base}?${q}`), 400, "invalid_request");
    }
    expect((await call("GET", `${base}?format=csv&limit=${CSV_MAX_ENTRIES}`)).status).toBe(200);
  });

  it("documents the cap and the continuation header in /openapi.json", async () => {
    const doc = (await call("GET", "/openapi.json", undefined, { token: null })).json;
    const op = doc.paths["/v1/accounts/{account_id}/ledger"].get;
    expect(Object.keys(op.responses["200"].headers)).toContain(NEXT_AFTER_SEQ_HEADER);
    expect(op.description).toContain(String(CSV_MAX_ENTRIES));
  });
});
