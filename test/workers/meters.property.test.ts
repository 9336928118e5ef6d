/**
 * Metered and converting debits against a small reference model, in workerd
 * with real DO SQLite and local D1: random grants in three units, plain,
 * metered (with price changes) and converting debits. After every step the
 * account's balances equal the model's; at the end the chain verifies, the
 * entries sum to the balances per unit, and no converting debit ever took
 * less value than it paid for (prices in one numeraire: 1 credit = 1 000,
 * 1 token = 3, 1 GB = 10 000, consistent with the rates 3/1 000 and 10/1).
 */
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { verifyChain } from "../../src/ledger";
import { call, ledgerEntries, uid } from "./helpers";

const unitName = (p: string) => `${p}_${uid("").replace(/[^a-z0-9]/g, "_")}`.slice(0, 32);
let TOK = "";
let GB = "";
let METER = "";
/** Value of one unit in the numeraire. */
const VALUE: Record<string, bigint> = {};

type Cmd =
  | { op: "grant"; unit: "credits" | "tok" | "gb"; amount: number }
  | { op: "debit"; amount: number; convert: boolean }
  | { op: "metered"; quantity: number }
  | { op: "price"; amount: number; per: number };

const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  fc.record({
    op: fc.constant("grant" as const),
    unit: fc.constantFrom("credits" as const, "tok" as const, "gb" as const),
    amount: fc.integer({ min: 1, max: 3000 }),
  }),
  fc.record({ op: fc.constant("debit" as const), amount: fc.integer({ min: 1, max: 60 }), convert: fc.boolean() }),
  fc.record({ op: fc.constant("metered" as const), quantity: fc.integer({ min: 1, max: 20_000 }) }),
  fc.record({
    op: fc.constant("price" as const),
    amount: fc.integer({ min: 1, max: 9 }),
    per: fc.integer({ min: 1, max: 2000 }),
  }),
);

const ceilDiv = (a: bigint, b: bigint) => (a + b - 1n) / b;

beforeAll(async () => {
  TOK = unitName("ptok");
  GB = unitName("pgb");
  METER = uid("p-tokens");
  for (const u of [TOK, GB]) expect((await call("PUT", `/v1/units/${u}`, { name: u, scale: 0 })).status).toBe(201);
  await call("PUT", `/v1/rates/${TOK}/credits`, { numerator: 3, denominator: 1000 });
  await call("PUT", `/v1/rates/${GB}/credits`, { numerator: 10, denominator: 1 });
  Object.assign(VALUE, { credits: 1000n, [TOK]: 3n, [GB]: 10_000n });
});

describe("metered and converting debits match the reference model", () => {
  it("keeps balances, entries and value in step over random sequences", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(cmdArb, { minLength: 1, maxLength: 14 }), async (cmds) => {
        const a = uid();
        await call("PUT", `/v1/accounts/${a}`, {});
        expect((await call("PUT", `/v1/accounts/${a}/policy`, { convert_from: [TOK, GB] })).status).toBe(200);
        let price = { amount: 3, per: 1000 };
        await call("PUT", `/v1/meters/${METER}`, { unit: "credits", price });
        const unitOf = { credits: "credits", tok: TOK, gb: GB } as const;
        const model: Record<string, number> = { credits: 0, [TOK]: 0, [GB]: 0 };
        const worth = () => Object.entries(model).reduce((v, [u, n]) => v + BigInt(n) * (VALUE[u] ?? 0n), 0n);
        for (const [i, c] of cmds.entries()) {
          if (c.op === "grant") {
            const res = await call("POST", `/v1/accounts/${a}/grants`, {
              grant_id: `g${i}`,
              type: "purchased",
              unit: unitOf[c.unit],
              amount: c.amount,
            });
            expect(res.status).toBe(201);
            model[unitOf[c.unit]] = (model[unitOf[c.unit]] ?? 0) + c.amount;
          } else if (c.op === "price") {
            price = { amount: c.amount, per: c.per };
            expect((await call("PUT", `/v1/meters/${METER}`, { unit: "credits", price })).status).toBeLessThan(300);
          } else if (c.op === "metered") {
            const want = Number(ceilDiv(BigInt(c.quantity) * BigInt(price.amount), BigInt(price.per)));
            const res = await call("POST", `/v1/accounts/${a}/debits`, {
              debit_id: `d${i}`,
              meter: METER,
              quantity: c.quantity,
            });
            if (want > (model.credits ?? 0)) {
              expect(res.status).toBe(402);
              expect(res.json).toMatchObject({ available: model.credits, requested: want });
            } else {
              expect(res.status).toBe(200);
              expect(res.json).toMatchObject({ amount: want, meter: METER, quantity: c.quantity });
              model.credits = (model.credits ?? 0) - want;
            }
          } else {
            // Reference conversion: own credits, then tokens, then GB, value down, cost up.
            const next = { ...model };
            const own = Math.min(next.credits ?? 0, c.amount);
            next.credits = (next.credits ?? 0) - own;
            let short = c.amount - own;
            let reach = own + (next.credits ?? 0);
            if (c.convert) {
              for (const [u, n, d] of [
                [TOK, 3n, 1000n],
                [GB, 10n, 1n],
              ] as const) {
                const has = BigInt(next[u] ?? 0);
                const w = (has * n) / d;
                reach += Number(w);
                const covers = w < BigInt(short) ? w : BigInt(short);
                if (covers === 0n) continue;
                next[u] = Number(has - ceilDiv(covers * d, n));
                short -= Number(covers);
              }
            }
            const before = worth();
            const res = await call("POST", `/v1/accounts/${a}/debits`, {
              debit_id: `d${i}`,
              amount: c.amount,
              convert: c.convert,
            });
            if (short > 0) {
              expect(res.status).toBe(402);
              expect(res.json).toMatchObject({ available: reach, requested: c.amount });
            } else {
              expect(res.status, res.text).toBe(200);
              Object.assign(model, next);
              // Paid c.amount credits' worth; never took less value than that.
              expect(before - worth() >= BigInt(c.amount) * 1000n).toBe(true);
            }
          }
          for (const u of ["credits", TOK, GB]) {
            const b = await call("GET", `/v1/accounts/${a}/balance?unit=${u}`);
            expect(b.json.available, `${u} after step ${i} (${c.op})`).toBe(model[u]);
          }
        }
        const entries = await ledgerEntries(a);
        expect(verifyChain(entries)).toBeNull();
        for (const u of ["credits", TOK, GB]) {
          expect(entries.filter((e) => e.unit === u).reduce((n, e) => n + e.amount, 0)).toBe(model[u]);
        }
        for (const e of entries) {
          if (e.conversion) expect([TOK, GB]).toContain(e.unit);
          if (e.rating) expect(e.unit).toBe("credits");
        }
      }),
      { numRuns: 12 },
    );
  });
});
