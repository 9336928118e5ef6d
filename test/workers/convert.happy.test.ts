/**
 * Converting debits in workerd: a debit in credits with `convert: true`
 * draws, once its own credits are spent, from units that have a rate to
 * credits, in the account policy's `convert_from` order, rounding the amount
 * drawn up. Entries stay in their lot's unit and carry the rate; the chain
 * verifies in the DO export and after shipping to D1. Figures worked by hand.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { entryFromD1 } from "../../src/db/reconciliation";
import { ledgerDb } from "../../src/db/shards";
import { verifyChain } from "../../src/ledger";
import { balance, call, expectProblem, grant, ledgerEntries, runAlarm, uid } from "./helpers";
import { drain, runCron } from "./jobs-helpers";

const unitName = (p: string) => `${p}_${uid("").replace(/[^a-z0-9]/g, "_")}`.slice(0, 32);

async function setup() {
  const a = uid();
  const tok = unitName("tok");
  const gb = unitName("gb");
  const loose = unitName("loose");
  for (const u of [tok, gb, loose]) await call("PUT", `/v1/units/${u}`, { name: u, scale: 0 });
  // 1 token = 3/1 000 credit; 1 GB = 10 credits; `loose` has no rate.
  await call("PUT", `/v1/rates/${tok}/credits`, { numerator: 3, denominator: 1000 });
  await call("PUT", `/v1/rates/${gb}/credits`, { numerator: 10, denominator: 1 });
  await grant(a, { grant_id: "g-c", amount: 5 });
  await grant(a, { grant_id: "g-t", amount: 2000, unit: tok });
  await grant(a, { grant_id: "g-g", amount: 10, unit: gb });
  await grant(a, { grant_id: "g-l", amount: 1000, unit: loose });
  const policy = await call("PUT", `/v1/accounts/${a}/policy`, { convert_from: [loose, tok, gb] });
  expect(policy.status, policy.text).toBe(200);
  expect(policy.json.convert_from).toEqual([loose, tok, gb]);
  return { a, tok, gb, loose };
}

describe("converting debits", () => {
  it("draws own credits first, then each listed unit with a rate, in order, rounding up", async () => {
    const { a, tok, gb, loose } = await setup();
    // 20 credits: 5 own; 2 000 tokens are worth 6 -> all taken, 9 left; 9 credits of GB at 10 each -> 1 GB.
    const res = await call("POST", `/v1/accounts/${a}/debits`, { debit_id: "d1", amount: 20, convert: true });
    expect(res.status, res.text).toBe(200);
    expect(res.json).toMatchObject({
      debit_id: "d1",
      amount: 20,
      unit: "credits",
      applied: [{ grant_id: "g-c", amount: 5 }],
      converted: [
        {
          unit: tok,
          numerator: 3,
          denominator: 1000,
          amount: 2000,
          covers: 6,
          applied: [{ grant_id: "g-t", amount: 2000 }],
        },
        { unit: gb, numerator: 10, denominator: 1, amount: 1, covers: 9, applied: [{ grant_id: "g-g", amount: 1 }] },
      ],
    });
    expect(res.json.balance.available).toBe(0);
    expect((await balance(a, tok)).available).toBe(0);
    expect((await balance(a, gb)).available).toBe(9);
    // `loose` is listed but has no rate: it never mixes.
    expect((await balance(a, loose)).available).toBe(1000);

    const entries = (await ledgerEntries(a)).filter((e) => e.ref === "d1");
    expect(entries.map((e) => [e.unit, e.amount, e.conversion ?? null])).toEqual([
      ["credits", -5, null],
      [tok, -2000, { to_unit: "credits", numerator: 3, denominator: 1000 }],
      [gb, -1, { to_unit: "credits", numerator: 10, denominator: 1 }],
    ]);
    expect(Object.hasOwn(entries[0], "conversion")).toBe(false);
    const all = await ledgerEntries(a);
    expect(verifyChain(all)).toBeNull();
    await runAlarm(a);
    const { results } = await ledgerDb(env, a)
      .prepare("SELECT * FROM ledger_entries WHERE account_id = ? ORDER BY seq")
      .bind(a)
      .all();
    const fromD1 = results.map((r) => entryFromD1(r as unknown as Parameters<typeof entryFromD1>[0]));
    expect(fromD1).toEqual(all);
    expect(verifyChain(fromD1)).toBeNull();

    // The real reconciliation (the scheduled handler) re-hashes D1's rows and sums them per unit: no drift.
    await drain(a);
    await runCron(Date.now());
    const checkpoint = await env.DB.prepare(
      "SELECT verified_seq, behind FROM reconciliation_checkpoints WHERE account_id = ?",
    )
      .bind(a)
      .first<{ verified_seq: number; behind: number }>();
    expect(checkpoint).toEqual({ verified_seq: all.length, behind: 0 });
    const drifts = await env.DB.prepare("SELECT COUNT(*) AS n FROM reconciliation_drifts WHERE account_id = ?")
      .bind(a)
      .first<{ n: number }>();
    expect(drifts?.n).toBe(0);
  });

  it("is all or nothing: short even after converting, nothing moves", async () => {
    const { a, tok, gb } = await setup();
    // Reach: 5 own + 6 (2 000 tokens) + 100 (10 GB) = 111 credits.
    const short = await call("POST", `/v1/accounts/${a}/debits`, { debit_id: "d-big", amount: 112, convert: true });
    expectProblem(short, 402, "insufficient_credits");
    expect(short.json).toMatchObject({ available: 111, requested: 112 });
    const before = await ledgerEntries(a);
    expect(before.some((e) => e.ref === "d-big")).toBe(false);
    // Without convert, only credits count.
    const plain = await call("POST", `/v1/accounts/${a}/debits`, { debit_id: "d-plain", amount: 6 });
    expectProblem(plain, 402, "insufficient_credits");
    expect(plain.json).toMatchObject({ available: 5, requested: 6 });
    // Exactly the reach: every token and GB goes.
    const all = await call("POST", `/v1/accounts/${a}/debits`, { debit_id: "d-all", amount: 111, convert: true });
    expect(all.status, all.text).toBe(200);
    expect(all.json.converted.map((l: { amount: number; covers: number }) => [l.amount, l.covers])).toEqual([
      [2000, 6],
      [10, 100],
    ]);
    expect((await balance(a, tok)).available).toBe(0);
    expect((await balance(a, gb)).available).toBe(0);
  });

  it("without convert_from in the policy, convert: true is a plain debit", async () => {
    const a = uid();
    await grant(a, { grant_id: "g", amount: 3 });
    const res = await call("POST", `/v1/accounts/${a}/debits`, { debit_id: "d", amount: 2, convert: true });
    expect(res.status).toBe(200);
    expect(Object.hasOwn(res.json, "converted")).toBe(false);
    expect((await call("GET", `/v1/accounts/${a}/policy`)).json.convert_from).toEqual([]);
  });

  it("refuses a bad convert_from and a bad convert flag, changing nothing", async () => {
    const { a, tok } = await setup();
    for (const body of [
      { convert_from: [tok, tok] },
      { convert_from: ["Not-A-Unit"] },
      { convert_from: tok },
      { convert_from: Array.from({ length: 17 }, (_, i) => `u${i}`) },
    ]) {
      expectProblem(await call("PUT", `/v1/accounts/${a}/policy`, body), 400, "invalid_request");
    }
    expect((await call("GET", `/v1/accounts/${a}/policy`)).json.convert_from).toHaveLength(3);
    expectProblem(
      await call("POST", `/v1/accounts/${a}/debits`, { debit_id: "x", amount: 1, convert: "yes" }),
      400,
      "invalid_request",
    );
    // null drops the override: back to the global list (empty by default).
    const dropped = await call("PUT", `/v1/accounts/${a}/policy`, { convert_from: null });
    expect(dropped.json.convert_from).toEqual([]);
  });
});
