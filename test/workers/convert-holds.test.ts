/**
 * Converting holds and receipts in workerd: `convert: true` on a hold or a
 * receipt reserves, once the unit is spent, from units with a rate to it in
 * the policy's `convert_from` order (rounded up, as a debit does); the hold
 * keeps each leg's rate, and a capture (settle, sweep) of c converts each
 * leg's part back rounded up, releasing the rest exactly. Figures by hand.
 *
 * Every test: 5 credits, 2 000 tokens at 3/1 000 credit (worth 6), 10 GB at
 * 10 credits each; a hold of 20 reserves 5 credits, all 2 000 tokens (6) and
 * 1 GB (covers 9, worth 10).
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { AccountLedger } from "../../src/account/account-do";
import { DEFAULT_POLICY, verifyChain } from "../../src/ledger";
import { grantCmd } from "../unit/fixtures";
import { advanceClock, balance, call, expectProblem, grant, ledgerEntries, ledgerStubFor, uid } from "./helpers";

const unitName = (p: string) => `${p}_${uid("").replace(/[^a-z0-9]/g, "_")}`.slice(0, 32);

async function setup(policy: Record<string, unknown> = {}) {
  const a = uid();
  const tok = unitName("tok");
  const gb = unitName("gb");
  for (const u of [tok, gb]) await call("PUT", `/v1/units/${u}`, { name: u, scale: 0 });
  await call("PUT", `/v1/rates/${tok}/credits`, { numerator: 3, denominator: 1000 });
  await call("PUT", `/v1/rates/${gb}/credits`, { numerator: 10, denominator: 1 });
  await grant(a, { grant_id: "g-c", amount: 5 });
  await grant(a, { grant_id: "g-t", amount: 2000, unit: tok });
  await grant(a, { grant_id: "g-g", amount: 10, unit: gb });
  const put = await call("PUT", `/v1/accounts/${a}/policy`, { convert_from: [tok, gb], ...policy });
  expect(put.status, put.text).toBe(200);
  const convTok = { to_unit: "credits", numerator: 3, denominator: 1000 };
  const convGb = { to_unit: "credits", numerator: 10, denominator: 1 };
  return { a, tok, gb, convTok, convGb };
}

const hold = (a: string, body: Record<string, unknown>) => call("POST", `/v1/accounts/${a}/holds`, body);
const capture = (a: string, h: string, body?: Record<string, unknown>) =>
  call("POST", `/v1/accounts/${a}/holds/${h}/capture`, body);
const refEntries = async (a: string, ref: string) =>
  (await ledgerEntries(a))
    .filter((e) => e.ref === ref)
    .map((e) => [e.kind, e.unit, e.amount, e.held_delta, e.conversion ?? null]);

/** available / held per unit. */
async function balances(a: string, tok: string, gb: string) {
  const out: Record<string, [number, number]> = {};
  for (const [k, u] of [
    ["credits", "credits"],
    ["tok", tok],
    ["gb", gb],
  ] as const) {
    const b = await balance(a, u);
    out[k] = [b.available, b.held];
  }
  return out;
}

describe("converting holds", () => {
  it("reserves across units with each leg's rate, captures part converting back rounded up, replays", async () => {
    const { a, tok, gb, convTok, convGb } = await setup();
    const res = await hold(a, { hold_id: "h1", amount: 20, convert: true });
    expect(res.status, res.text).toBe(201);
    expect(res.json).toMatchObject({
      hold_id: "h1",
      amount: 20,
      unit: "credits",
      status: "open",
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
      balance: { available: 0, held: 5 },
    });
    expect(await balances(a, tok, gb)).toEqual({ credits: [0, 5], tok: [0, 2000], gb: [9, 1] });
    expect(await refEntries(a, "h1")).toEqual([
      ["hold", "credits", 0, 5, null],
      ["hold", tok, 0, 2000, convTok],
      ["hold", gb, 0, 1, convGb],
    ]);

    // The same hold again replays; another body under its id is refused.
    const again = await hold(a, { hold_id: "h1", amount: 20, convert: true });
    expect(again.status).toBe(201);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.json).toEqual(res.json);
    expectProblem(await hold(a, { hold_id: "h1", amount: 20 }), 409, "idempotency_conflict");

    // Capture 7: 5 credits, then 2 of tokens = ceil(2 · 1 000 / 3) = 667 tokens; 1 333 tokens and 1 GB released.
    const c = await capture(a, "h1", { amount: 7 });
    expect(c.status, c.text).toBe(200);
    expect(c.json).toMatchObject({ hold_id: "h1", status: "captured", captured: 7, released: 13 });
    expect(await balances(a, tok, gb)).toEqual({ credits: [0, 0], tok: [1333, 0], gb: [10, 0] });
    const closed = await refEntries(a, "h1");
    expect(closed.slice(3)).toEqual([
      ["hold.captured", "credits", -5, -5, null],
      ["hold.captured", tok, -667, -667, convTok],
      ["hold.released", tok, 0, -1333, convTok],
      ["hold.released", gb, 0, -1, convGb],
    ]);
    const replay = await capture(a, "h1", { amount: 7 });
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(replay.json).toEqual(c.json);
    // Another capture amount after the close is the idempotency conflict it always was.
    expectProblem(await capture(a, "h1", { amount: 8 }), 409, "idempotency_conflict");
    expect(await refEntries(a, "h1")).toEqual(closed);
    expect(verifyChain(await ledgerEntries(a))).toBeNull();
  });

  it("a capture one credit into a coarse leg takes a whole GB; a full capture takes all reserved", async () => {
    const { a, tok, gb, convGb } = await setup();
    await hold(a, { hold_id: "h12", amount: 20, convert: true });
    // 12: 5 + 6 (all tokens) + 1 credit of GB = 0.1 GB, rounded up to 1 GB.
    const c12 = await capture(a, "h12", { amount: 12 });
    expect(c12.json).toMatchObject({ captured: 12, released: 8 });
    expect(await balances(a, tok, gb)).toEqual({ credits: [0, 0], tok: [0, 0], gb: [9, 0] });
    expect((await refEntries(a, "h12")).filter((e) => e[1] === gb)).toEqual([
      ["hold", gb, 0, 1, convGb],
      ["hold.captured", gb, -1, -1, convGb],
    ]);

    const b = await setup();
    await hold(b.a, { hold_id: "hf", amount: 20, convert: true });
    const full = await capture(b.a, "hf");
    expect(full.json).toMatchObject({ status: "captured", captured: 20, released: 0 });
    expect(await balances(b.a, b.tok, b.gb)).toEqual({ credits: [0, 0], tok: [0, 0], gb: [9, 0] });
    expect((await refEntries(b.a, "hf")).slice(3)).toEqual([
      ["hold.captured", "credits", -5, -5, null],
      ["hold.captured", b.tok, -2000, -2000, b.convTok],
      ["hold.captured", b.gb, -1, -1, b.convGb],
    ]);
  });

  it("a release gives every leg back exactly", async () => {
    const { a, tok, gb, convTok, convGb } = await setup();
    await hold(a, { hold_id: "hr", amount: 20, convert: true });
    const r = await call("POST", `/v1/accounts/${a}/holds/hr/release`);
    expect(r.json).toMatchObject({ status: "released", released: 20 });
    expect(await balances(a, tok, gb)).toEqual({ credits: [5, 0], tok: [2000, 0], gb: [10, 0] });
    expect((await refEntries(a, "hr")).slice(3)).toEqual([
      ["hold.released", "credits", 0, -5, null],
      ["hold.released", tok, 0, -2000, convTok],
      ["hold.released", gb, 0, -1, convGb],
    ]);
  });

  it("is all or nothing; without convert only the unit counts", async () => {
    const { a, tok, gb } = await setup();
    // Reach: 5 + 6 + 100 = 111.
    const short = await hold(a, { hold_id: "big", amount: 112, convert: true });
    expectProblem(short, 402, "insufficient_credits");
    expect(short.json).toMatchObject({ available: 111, requested: 112 });
    expectProblem(await hold(a, { hold_id: "plain", amount: 6 }), 402, "insufficient_credits");
    expect(await balances(a, tok, gb)).toEqual({ credits: [5, 0], tok: [2000, 0], gb: [10, 0] });
    expect((await ledgerEntries(a)).some((e) => e.ref === "big" || e.ref === "plain")).toBe(false);
  });

  it("the deadline sweep captures (hold_on_expiry: capture) or releases a converted hold", async () => {
    const cap = await setup({ hold_on_expiry: "capture" });
    await hold(cap.a, { hold_id: "hx", amount: 8, convert: true, ttl_seconds: 30 });
    // 8: 5 credits + 3 of tokens = 1 000 tokens.
    await advanceClock(cap.a, 31_000);
    expect(await runDurableObjectAlarm(ledgerStubFor(cap.a))).toBe(true);
    expect(await balances(cap.a, cap.tok, cap.gb)).toEqual({ credits: [0, 0], tok: [1000, 0], gb: [10, 0] });
    const swept = (await ledgerEntries(cap.a)).filter((e) => e.ref === "hx" && e.kind === "hold.captured");
    expect(swept.map((e) => [e.unit, e.amount, e.actor, e.conversion ?? null])).toEqual([
      ["credits", -5, "system:sweep", null],
      [cap.tok, -1000, "system:sweep", cap.convTok],
    ]);
    expect((await call("GET", `/v1/accounts/${cap.a}/holds/hx`)).json).toMatchObject({
      status: "captured",
      captured: 8,
      released: 0,
    });

    const rel = await setup();
    await hold(rel.a, { hold_id: "hy", amount: 20, convert: true, ttl_seconds: 30 });
    await advanceClock(rel.a, 31_000);
    expect(await runDurableObjectAlarm(ledgerStubFor(rel.a))).toBe(true);
    expect(await balances(rel.a, rel.tok, rel.gb)).toEqual({ credits: [5, 0], tok: [2000, 0], gb: [10, 0] });
    expect((await call("GET", `/v1/accounts/${rel.a}/holds/hy`)).json).toMatchObject({
      status: "released",
      released: 20,
    });
  });

  it("keeps each lot's unit and rate when the allocations spill out of the hold row", async () => {
    const a = uid();
    const tok = unitName("tok");
    await call("PUT", `/v1/units/${tok}`, { name: tok, scale: 0 });
    await call("PUT", `/v1/rates/${tok}/credits`, { numerator: 1, denominator: 2 });
    await grant(a, { grant_id: "seed", amount: 1 });
    expect((await call("PUT", `/v1/accounts/${a}/policy`, { convert_from: [tok] })).status).toBe(200);
    // 300 lots of 2 tokens (1 credit each): as JSON, past HOLD_ALLOCATIONS_INLINE_MAX.
    const n = 300;
    await runInDurableObject(ledgerStubFor(a), (inst: AccountLedger) => {
      const ctx = { accountId: a, actor: "test:admin", requestId: "seed", globalPolicy: DEFAULT_POLICY };
      for (let i = 0; i < n; i++) {
        const cmd = grantCmd({ grantId: `t-${String(i).padStart(3, "0")}`, unit: tok, amount: 2 });
        const out = inst.grant(ctx, cmd, { key: cmd.grantId, bodyHash: `seed-${i}` });
        if (!out.ok) throw new Error(out.problem.detail);
      }
    });
    // 1 credit own + 300 credits of tokens = 600 tokens over 300 lots.
    const h = await hold(a, { hold_id: "wide", amount: 301, convert: true });
    expect(h.status, h.text).toBe(201);
    const stored = await runInDurableObject(ledgerStubFor(a), (_inst: AccountLedger, state) => {
      const row = state.storage.sql.exec("SELECT allocations FROM holds WHERE hold_id = 'wide'").one();
      const rows = state.storage.sql
        .exec(
          "SELECT conversion_unit AS u, conversion_numerator AS n, conversion_denominator AS d FROM hold_allocations WHERE hold_id = 'wide' ORDER BY idx",
        )
        .toArray();
      return { inline: String(row.allocations), rows };
    });
    expect(stored.inline).toBe('"spilled"');
    expect(stored.rows).toHaveLength(n + 1);
    expect(stored.rows[0]).toEqual({ u: null, n: null, d: null });
    expect(stored.rows.slice(1).every((r) => r.u === tok && r.n === 1 && r.d === 2)).toBe(true);
    // Capture 52: 1 own, 51 credits of tokens = 102 tokens = the first 51 lots; the rest released.
    const c = await capture(a, "wide", { amount: 52 });
    expect(c.json).toMatchObject({ captured: 52, released: 249 });
    expect(await balance(a, tok)).toMatchObject({ available: 600 - 102, held: 0 });
    const taken = (await ledgerEntries(a)).filter((e) => e.ref === "wide" && e.kind === "hold.captured");
    expect(taken).toHaveLength(52);
    expect(taken.slice(1).every((e) => e.amount === -2 && e.conversion?.numerator === 1)).toBe(true);
  });
});

describe("converting receipts", () => {
  it("reserves across units and settles `used` as a capture of it", async () => {
    const { a, tok, gb, convTok, convGb } = await setup();
    const r = await call("POST", `/v1/accounts/${a}/receipts`, { receipt_id: "r1", amount: 20, convert: true });
    expect(r.status, r.text).toBe(201);
    expect(r.json).toMatchObject({
      receipt_id: "r1",
      amount: 20,
      applied: [{ grant_id: "g-c", amount: 5 }],
      converted: [
        { unit: tok, amount: 2000, covers: 6 },
        { unit: gb, amount: 1, covers: 9 },
      ],
    });
    expect(await refEntries(a, "r1")).toEqual([
      ["receipt", "credits", 0, 5, null],
      ["receipt", tok, 0, 2000, convTok],
      ["receipt", gb, 0, 1, convGb],
    ]);
    // used 7: 5 credits + 667 tokens; every lot's hold ends.
    const s = await call("POST", "/v1/receipts/settle", { receipt: r.json.receipt, used: 7 });
    expect(s.status, s.text).toBe(200);
    expect(s.json).toMatchObject({ receipt_id: "r1", used: 7, released: 13, balance: { available: 0, held: 0 } });
    expect(await balances(a, tok, gb)).toEqual({ credits: [0, 0], tok: [1333, 0], gb: [10, 0] });
    const settled = await refEntries(a, "r1");
    expect(settled.slice(3)).toEqual([
      ["receipt.settled", "credits", -5, -5, null],
      ["receipt.settled", tok, -667, -2000, convTok],
      ["receipt.settled", gb, 0, -1, convGb],
    ]);
    const again = await call("POST", "/v1/receipts/settle", { receipt: r.json.receipt, used: 7 });
    expect(again.json).toEqual(s.json);
    expectProblem(
      await call("POST", "/v1/receipts/settle", { receipt: r.json.receipt, used: 8 }),
      409,
      "receipt_settled",
    );
    expect(await refEntries(a, "r1")).toEqual(settled);
  });
});

describe("bad input on convert changes nothing", () => {
  it("refuses a convert that is not a boolean on holds and receipts", async () => {
    const { a, tok, gb } = await setup();
    const before = await ledgerEntries(a);
    for (const convert of ["yes", 1, null, {}, []]) {
      expectProblem(await hold(a, { hold_id: "bad", amount: 1, convert }), 400, "invalid_request");
      expectProblem(
        await call("POST", `/v1/accounts/${a}/receipts`, { receipt_id: "bad", amount: 1, convert }),
        400,
        "invalid_request",
      );
    }
    expect(await ledgerEntries(a)).toEqual(before);
    expect(await balances(a, tok, gb)).toEqual({ credits: [5, 0], tok: [2000, 0], gb: [10, 0] });
    // The ids were never used: a good request under them goes through.
    expect((await hold(a, { hold_id: "bad", amount: 1, convert: false })).status).toBe(201);
  });
});
