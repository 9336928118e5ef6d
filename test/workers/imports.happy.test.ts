/**
 * POST /v1/imports, what it writes: legacy lots become migration grants
 * through the grant path (entries, hash chain, outbox to D1, journal and
 * cost basis), each account's lines in one transaction; importing twice is
 * importing once; a dry run writes nothing; a taken legacy_id is a
 * conflict line; the account's own state can refuse a line. Expected
 * figures are worked out by hand in each test.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { advanceClock, balance, call, grant, ledgerEntries, uid } from "./helpers";
import { accountState, DAY, importLots, inDays, lot, ndjson } from "./imports-helpers";
import { d1Entries, drainVia } from "./outbox-helpers";

const statuses = (res: { json: any }) => res.json.results.map((r: any) => r.status);

async function journalBy(sql: string, accountId: string) {
  const { results } = await env.DB.prepare(sql).bind(accountId).all<Record<string, number | string>>();
  return Object.fromEntries(results.map((r) => [String(r.k), Number(r.v)]));
}

describe("an import creates migration grants", () => {
  it("with their types, units, priorities, times and cost basis, creating accounts that do not exist", async () => {
    const a = uid("imp");
    const b = uid("imp");
    expect((await call("PUT", `/v1/accounts/${b}`, { name: "existing" })).status).toBe(201);
    const since = new Date(Date.now() - 30 * DAY).toISOString();
    const until = inDays(10);
    const res = await importLots([
      {
        legacy_id: "p1",
        account_id: a,
        amount: 1000,
        type: "purchased",
        cost_basis: { amount: 10_000, currency: "USD", tax: { amount: 1_900, jurisdiction: "DE" } },
        effective_at: since,
      },
      { legacy_id: "promo", account_id: a, amount: 200, type: "promotional", expires_at: until, priority: 0 },
      { legacy_id: "comp", account_id: b, amount: 50, type: "compensatory", reason: "outage", unit: "minutes" },
    ]);
    expect(res.status, res.text).toBe(200);
    expect(res.json).toMatchObject({ dry_run: false, lines: 3, accounts: 2, created: 3, unchanged: 0, conflicts: 0 });
    expect(res.json.results).toEqual([
      { line: 1, legacy_id: "p1", account_id: a, status: "created" },
      { line: 2, legacy_id: "promo", account_id: a, status: "created" },
      { line: 3, legacy_id: "comp", account_id: b, status: "created" },
    ]);

    expect((await call("GET", `/v1/accounts/${a}`)).status).toBe(200);
    const p1 = (await call("GET", `/v1/accounts/${a}/grants/p1`)).json;
    expect(p1).toMatchObject({
      grant_id: "p1",
      amount: 1000,
      remaining: 1000,
      type: "purchased",
      source: "migration",
      effective_at: since,
      expires_at: null,
      cost_basis: { amount: 10_000, currency: "USD", tax: { amount: 1_900, jurisdiction: "DE" } },
      status: "active",
    });
    const promo = (await call("GET", `/v1/accounts/${a}/grants/promo`)).json;
    expect(promo).toMatchObject({ type: "promotional", priority: 0, expires_at: until, source: "migration" });
    const bal = await balance(a);
    expect(bal).toMatchObject({ available: 1200, held: 0, by_type: { purchased: 1000, promotional: 200 } });
    expect(bal.expiring).toEqual([{ grant_id: "promo", amount: 200, expires_at: until }]);
    expect(await balance(b, "minutes")).toMatchObject({ available: 50, by_type: { compensatory: 50 } });
    expect((await balance(b)).available).toBe(0);

    // One transaction per account: a's two lots are one txn, chained, written by the admin.
    const entries = await ledgerEntries(a);
    expect(entries.map((e) => [e.seq, e.kind, e.grant_id, e.amount, e.actor])).toEqual([
      [1, "grant", "p1", 1000, "admin-token:admin"],
      [2, "grant", "promo", 200, "admin-token:admin"],
    ]);
    expect(entries[1].txn_id).toBe(entries[0].txn_id);
    expect(entries[1].prev_hash).toBe(entries[0].hash);
    expect(entries[0].effective_at).toBe(since);
  });

  it("ships through the outbox like any grant: D1 entries, the journal and cost recognized by the cumulative rule", async () => {
    const a = uid("imp");
    const res = await importLots([
      {
        legacy_id: "L-1",
        account_id: a,
        amount: 1000,
        type: "purchased",
        cost_basis: { amount: 10_000, currency: "USD" },
      },
    ]);
    expect(res.json.created).toBe(1);
    // 333 of 1 000 credits bought for 10 000: floor(10 000 · 333 / 1 000) = 3 330 recognized.
    expect((await call("POST", `/v1/accounts/${a}/debits`, { debit_id: "d1", amount: 333 })).status).toBe(200);
    expect(await drainVia(a)).toEqual({ ok: true, pending: 0 });
    const served = await ledgerEntries(a);
    const shipped = await d1Entries(a);
    expect(shipped.map((e: any) => [e.seq, e.kind, e.hash])).toEqual(served.map((e) => [e.seq, e.kind, e.hash]));
    const cost = await journalBy(
      "SELECT category || ':' || credit_type AS k, SUM(cost_minor) AS v FROM journal WHERE account_id = ? GROUP BY 1",
      a,
    );
    expect(cost).toEqual({ "issued:purchased": 10_000, "consumed:purchased": 3_330 });
  });
});

describe("import twice equals import once", () => {
  it("a repeat of the same lines is unchanged: the same entries, grants and balances, nothing shipped twice", async () => {
    const a = uid("imp");
    const b = uid("imp");
    const lines = [
      lot(a, { legacy_id: "x1", amount: 700, cost_basis: { amount: 7_00, currency: "EUR" }, expires_at: inDays(90) }),
      lot(a, { legacy_id: "x2", amount: 300, type: "promotional" }),
      lot(b, { legacy_id: "x1", amount: 5 }),
    ];
    const first = await importLots(lines);
    expect(statuses(first)).toEqual(["created", "created", "created"]);
    const before = { a: await accountState(a), b: await accountState(b) };

    const again = await importLots(lines);
    expect(again.status).toBe(200);
    expect(again.json).toMatchObject({ created: 0, unchanged: 3, conflicts: 0 });
    expect(statuses(again)).toEqual(["unchanged", "unchanged", "unchanged"]);
    expect({ a: await accountState(a), b: await accountState(b) }).toEqual(before);

    // The same lots spelled otherwise (key order, CRLF, blank lines, an offset time) are the same lots.
    const x1 = lines[0] as Record<string, unknown>;
    const respelled = [
      JSON.stringify({
        ...Object.fromEntries(Object.entries(x1).reverse()),
        expires_at: String(x1.expires_at).replace("Z", "+00:00"),
      }),
      "",
      JSON.stringify({ ...lines[1], unit: "credits", priority: 100 }),
      JSON.stringify(lines[2]),
    ].join("\r\n");
    const third = await importLots(`${respelled}\r\n\r\n`);
    expect(statuses(third)).toEqual(["unchanged", "unchanged", "unchanged"]);
    expect(third.json.results.map((r: any) => r.line)).toEqual([1, 3, 4]);

    // Spending in between changes nothing either: the terms are what was imported, not what is left.
    expect((await call("POST", `/v1/accounts/${a}/debits`, { debit_id: "d", amount: 100 })).status).toBe(200);
    const spent = await accountState(a);
    expect(statuses(await importLots(lines))).toEqual(["unchanged", "unchanged", "unchanged"]);
    expect(await accountState(a)).toEqual(spent);
    expect((await balance(a)).available).toBe(700 + 300 - 100);

    expect(await drainVia(a)).toEqual({ ok: true, pending: 0 });
    expect((await d1Entries(a)).map((e: any) => e.kind)).toEqual(["grant", "grant", "debit"]);
  });

  it("a file with new lines among imported ones creates only the new ones", async () => {
    const a = uid("imp");
    const old = lot(a, { legacy_id: "old" });
    expect(statuses(await importLots([old]))).toEqual(["created"]);
    const res = await importLots([old, lot(a, { legacy_id: "new", amount: 40 })]);
    expect(statuses(res)).toEqual(["unchanged", "created"]);
    expect((await balance(a)).available).toBe(140);
    expect((await ledgerEntries(a)).map((e) => e.grant_id)).toEqual(["old", "new"]);
  });
});

describe("a dry run", () => {
  it("says what would change and writes nothing, not even the account", async () => {
    const a = uid("imp");
    const lines = [lot(a, { legacy_id: "d1" }), lot(a, { legacy_id: "d2", amount: 5 })];
    const before = await accountState(a);
    const dry = await importLots(lines, { dryRun: true });
    expect(dry.status).toBe(200);
    expect(dry.json).toMatchObject({ dry_run: true, lines: 2, created: 0, would_create: 2, unchanged: 0 });
    expect(statuses(dry)).toEqual(["would_create", "would_create"]);
    expect(await accountState(a)).toEqual(before);
    expect((await call("GET", `/v1/accounts/${a}`)).status).toBe(404);

    expect(statuses(await importLots(lines))).toEqual(["created", "created"]);
    const after = await accountState(a);
    const changed = [lines[0], { ...lines[1], amount: 6 }, lot(a, { legacy_id: "d3" })];
    const dry2 = await importLots(changed, { dryRun: true });
    expect(statuses(dry2)).toEqual(["unchanged", "conflict", "would_create"]);
    expect(dry2.json).toMatchObject({ unchanged: 1, conflicts: 1, would_create: 1, created: 0 });
    expect(await accountState(a)).toEqual(after);
  });
});

describe("conflicts and refusals are per line", () => {
  it("a legacy_id imported with other terms, or taken by an ordinary grant, is a conflict; the other lines go in", async () => {
    const a = uid("imp");
    expect(statuses(await importLots([lot(a, { legacy_id: "c1", amount: 100 })]))).toEqual(["created"]);
    await grant(a, { grant_id: "own", amount: 10 });
    const res = await importLots([
      lot(a, { legacy_id: "c1", amount: 200 }),
      lot(a, { legacy_id: "own", amount: 10 }),
      lot(a, { legacy_id: "c2", amount: 1 }),
    ]);
    expect(res.status).toBe(200);
    expect(res.json.results).toEqual([
      expect.objectContaining({ line: 1, status: "conflict", code: "idempotency_conflict" }),
      expect.objectContaining({ line: 2, status: "conflict", code: "idempotency_conflict" }),
      { line: 3, legacy_id: "c2", account_id: a, status: "created" },
    ]);
    expect(res.json.results[0].detail).toMatch(/other terms/);
    expect(res.json.results[1].detail).toMatch(/not imported/);
    expect((await call("GET", `/v1/accounts/${a}/grants/c1`)).json.amount).toBe(100);
    expect((await balance(a)).available).toBe(100 + 10 + 1);
    // And the other way round: an ordinary grant may not take an imported id.
    const taken = await call("POST", `/v1/accounts/${a}/grants`, { grant_id: "c1", amount: 1, type: "purchased" });
    expect(taken.status).toBe(409);
  });

  it("a line the account's state refuses is refused (an expiry past by its clock; the 9·10^15 total), the rest applied", async () => {
    const a = uid("imp");
    await grant(a, { amount: 1 });
    await advanceClock(a, 2 * DAY);
    const res = await importLots([
      lot(a, { legacy_id: "late", expires_at: inDays(1) }),
      lot(a, { legacy_id: "fine", expires_at: inDays(3) }),
    ]);
    expect(res.json.results.map((r: any) => [r.legacy_id, r.status, r.code ?? null])).toEqual([
      ["late", "refused", "invalid_request"],
      ["fine", "created", null],
    ]);
    expect(res.json).toMatchObject({ created: 1, refused: 1 });

    // Ten lots of 10^15 on one account: nine fit under 9·10^15, each line seeing those before it.
    const big = uid("imp");
    const tens = Array.from({ length: 10 }, (_, i) => lot(big, { legacy_id: `big-${i}`, amount: 10 ** 15 }));
    const capped = await importLots(tens);
    expect(capped.json).toMatchObject({ created: 9, refused: 1 });
    expect(capped.json.results[9]).toMatchObject({ legacy_id: "big-9", status: "refused", code: "invalid_amount" });
    expect((await balance(big)).available).toBe(9 * 10 ** 15);
  });
});

describe("imports are an admin's migration: no approval, no verified-account rule", () => {
  it("a promotional lot goes to an unverified account whose policy requires verification", async () => {
    const a = uid("imp");
    expect((await call("PUT", `/v1/accounts/${a}`, { verified: false })).status).toBe(201);
    const put = await call("PUT", `/v1/accounts/${a}/policy`, { require_verified_for_promotional: true });
    expect(put.status, put.text).toBe(200);
    const direct = await call("POST", `/v1/accounts/${a}/grants`, { grant_id: "g", amount: 5, type: "promotional" });
    expect(direct.json?.code).toBe("account_not_verified");
    const res = await importLots([lot(a, { legacy_id: "promo", amount: 5, type: "promotional" })]);
    expect(statuses(res)).toEqual(["created"]);
    expect((await balance(a)).by_type.promotional).toBe(5);
  });

  it("a lot above the account's approval threshold is imported at once", async () => {
    const a = uid("imp");
    await grant(a, { amount: 1 });
    const put = await call("PUT", `/v1/accounts/${a}/policy`, { approval_threshold: { grant: 10 } });
    expect(put.status, put.text).toBe(200);
    const direct = await call("POST", `/v1/accounts/${a}/grants`, { grant_id: "g", amount: 50, type: "purchased" });
    expect(direct.status).toBe(202);
    expect(statuses(await importLots([lot(a, { legacy_id: "big", amount: 50 })]))).toEqual(["created"]);
    expect((await balance(a)).available).toBe(51);
  });
});

describe("an empty body", () => {
  it("imports nothing: 200 with no lines (blank lines only, or no body at all)", async () => {
    for (const body of ["", "\n\n  \r\n"]) {
      const res = await importLots(body);
      expect(res.status, res.text).toBe(200);
      expect(res.json).toMatchObject({ lines: 0, accounts: 0, created: 0, results: [] });
    }
    expect(ndjson([])).toBe("\n");
  });
});
