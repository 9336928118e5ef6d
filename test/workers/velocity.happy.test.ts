/**
 * Velocity limits through the real Worker and the account's Durable Object:
 * windows per minute, hour and day, 429 velocity_limit with retry-after and
 * nothing moved, windows that slide with the DO clock, holds and receipts
 * counted when they reserve (a release gives nothing back), counts written
 * in the debit's own transaction, and bounded storage.
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { AccountLedger } from "../../src/account/account-do";
import { VelocityBook } from "../../src/account/velocity";
import {
  advanceClock,
  balance,
  call,
  debit,
  expectProblem,
  grant,
  ledgerEntries,
  ledgerStubFor,
  type Res,
  uid,
} from "./helpers";

const MIN = 60_000;

/** Moves the account's DO clock to `seconds` past the start of its next minute; returns that time. */
async function alignClock(accountId: string, seconds: number): Promise<number> {
  return runInDurableObject(ledgerStubFor(accountId), (inst: AccountLedger) => {
    const now = Date.now() + inst.clock.offsetMs;
    const target = Math.ceil(now / MIN) * MIN + seconds * 1000;
    inst.clock.offsetMs += target - now;
    return target;
  });
}

async function account(velocity: unknown, credits = 10_000): Promise<string> {
  const a = uid("vel");
  const put = await call("PUT", `/v1/accounts/${a}`, { name: "velocity", velocity });
  expect(put.status, put.text).toBe(201);
  await grant(a, { amount: credits });
  return a;
}

function expectVelocity(res: Res, window: string, used: number, requested: number): number {
  expectProblem(res, 429, "velocity_limit");
  expect(res.json).toMatchObject({ window, used, requested, unit: "credits" });
  const retry = Number(res.headers.get("retry-after"));
  expect(retry).toBe(res.json.retry_after);
  return retry;
}

describe("velocity limits on PUT /v1/accounts/{id}", () => {
  it("are stored, shown by GET, replaced as a whole, and removed by null", async () => {
    const a = uid("vel");
    const limits = { credits: { per_minute: 10, per_day: 1000 }, gpu_seconds: { per_hour: 5 } };
    const put = await call("PUT", `/v1/accounts/${a}`, { velocity: limits });
    expect(put.status).toBe(201);
    expect(put.json.velocity).toEqual(limits);
    expect((await call("GET", `/v1/accounts/${a}`)).json.velocity).toEqual(limits);
    // Other fields leave it alone.
    expect((await call("PUT", `/v1/accounts/${a}`, { name: "x" })).json.velocity).toEqual(limits);
    const replaced = await call("PUT", `/v1/accounts/${a}`, { velocity: { tokens: { per_minute: 3 } } });
    expect(replaced.json.velocity).toEqual({ tokens: { per_minute: 3 } });
    const removed = await call("PUT", `/v1/accounts/${a}`, { velocity: null });
    expect(removed.status).toBe(200);
    expect(removed.json.velocity).toBeUndefined();
    expect((await call("GET", `/v1/accounts/${a}`)).json.velocity).toBeUndefined();
  });

  it("refuse bad limits with 400 invalid_request and change nothing", async () => {
    const a = uid("vel");
    await call("PUT", `/v1/accounts/${a}`, { velocity: { credits: { per_minute: 7 } } });
    const before = (await call("GET", `/v1/accounts/${a}`)).text;
    const bad: [string, unknown][] = [
      ["bad unit key", { Credits: { per_minute: 1 } }],
      ["zero", { credits: { per_minute: 0 } }],
      ["negative", { credits: { per_hour: -5 } }],
      ["fractional", { credits: { per_day: 1.5 } }],
      ["string", { credits: { per_minute: "10" } }],
      ["boolean", { credits: { per_minute: true } }],
      ["above 9e15", { credits: { per_day: 9_000_000_000_000_001 } }],
      ["unknown window", { credits: { per_week: 10 } }],
      ["no window", { credits: {} }],
      ["null window set", { credits: null }],
      ["array", [{ per_minute: 1 }]],
      ["number", 10],
      [
        "17 units (MAX_VELOCITY_UNITS is 16)",
        Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`u_${i}`, { per_minute: 1 }])),
      ],
    ];
    for (const [name, velocity] of bad) {
      const res = await call("PUT", `/v1/accounts/${a}`, { velocity });
      expectProblem(res, 400, "invalid_request");
      expect((await call("GET", `/v1/accounts/${a}`)).text, name).toBe(before);
    }
  });
});

describe("velocity windows", () => {
  it("per_minute: refuses with 429 and retry-after, moves nothing, and lets the next minute in", async () => {
    const a = await account({ credits: { per_minute: 10 } });
    await alignClock(a, 1);
    expect((await debit(a, 6)).status).toBe(200);
    const before = { balance: await balance(a), ledger: await ledgerEntries(a) };
    const refused = await debit(a, 5, { debit_id: "d-over" });
    const retry = expectVelocity(refused, "per_minute", 6, 5);
    expect(refused.json.limit).toBe(10);
    // 1 s into the minute: the minute's bucket leaves at its end, 59 s away (a little less by now).
    expect(retry).toBeGreaterThanOrEqual(58);
    expect(retry).toBeLessThanOrEqual(59);
    expect({ balance: await balance(a), ledger: await ledgerEntries(a) }).toEqual({
      ...before,
      balance: { ...before.balance, as_of: expect.any(String) },
    });
    expectProblem(await call("GET", `/v1/accounts/${a}/debits/d-over`), 404, "not_found");
    // Exactly up to the limit is fine.
    expect((await debit(a, 4)).status).toBe(200);
    expectVelocity(await debit(a, 1), "per_minute", 10, 1);
    // A refused debit may be retried with the same id once the window has room.
    await advanceClock(a, retry * 1000);
    const again = await debit(a, 5, { debit_id: "d-over" });
    expect(again.status, again.text).toBe(200);
    expect(again.json.balance.available).toBe(10_000 - 6 - 4 - 5);
  });

  it("per_hour: slides a minute at a time; retry-after is the wait for the oldest minute to leave", async () => {
    const a = await account({ credits: { per_hour: 100 } });
    await alignClock(a, 1); // minute M, 1 s in
    expect((await debit(a, 60)).status).toBe(200);
    await advanceClock(a, 30 * MIN); // minute M+30
    expect((await debit(a, 40)).status).toBe(200);
    // M's 60 leave the hour when minute M+60 starts: 30 min − 1 s from here.
    const retry = expectVelocity(await debit(a, 1), "per_hour", 100, 1);
    expect(retry).toBe(30 * 60 - 1);
    await advanceClock(a, (retry - 1) * 1000);
    expectVelocity(await debit(a, 1), "per_hour", 100, 1);
    await advanceClock(a, 1000);
    // Only M+30's 40 are left in the window: 60 more fit, 61 do not.
    expectVelocity(await debit(a, 61), "per_hour", 40, 61);
    expect((await debit(a, 60)).status).toBe(200);
    expect((await balance(a)).available).toBe(10_000 - 60 - 40 - 60);
  });

  it("per_day: what was spent stays counted for 1 440 minutes", async () => {
    const a = await account({ credits: { per_day: 50, per_minute: 40 } });
    await alignClock(a, 1);
    expect((await debit(a, 30)).status).toBe(200);
    await advanceClock(a, MIN);
    expect((await debit(a, 20)).status).toBe(200);
    await advanceClock(a, 23 * 60 * MIN);
    // Both windows overflow for 41: named by the first (per_minute), waiting the longest (per_day).
    const both = await debit(a, 41);
    const retry = expectVelocity(both, "per_minute", 0, 41);
    // per_minute can never take 41 (a whole minute, 60 s); per_day takes it once M and M+1 have
    // both left, when minute M+1+1 440 starts: 60 min − 1 s from M+1 381 + 1 s. The longer wait wins.
    expect(retry).toBe(3599);
    expectVelocity(await debit(a, 1), "per_day", 50, 1);
    await advanceClock(a, 59 * MIN); // the first 30 leave after 1 440 minutes
    expect((await debit(a, 30)).status).toBe(200);
    expectVelocity(await debit(a, 1), "per_day", 50, 1);
  });

  it("counts per unit: a limit on credits does not touch another unit", async () => {
    const a = await account({ credits: { per_minute: 5 } });
    await grant(a, { amount: 100, unit: "tokens" });
    await alignClock(a, 1);
    expect((await debit(a, 5)).status).toBe(200);
    expectVelocity(await debit(a, 1), "per_minute", 5, 1);
    expect((await debit(a, 50, { unit: "tokens" })).status).toBe(200);
  });

  it("holds and receipts count when they reserve; a release gives nothing back; a capture adds nothing", async () => {
    const a = await account({ credits: { per_minute: 10 } });
    await alignClock(a, 1);
    const hold = await call("POST", `/v1/accounts/${a}/holds`, { hold_id: "h1", amount: 4 });
    expect(hold.status).toBe(201);
    const receipt = await call("POST", `/v1/accounts/${a}/receipts`, { receipt_id: "r1", amount: 3 });
    expect(receipt.status).toBe(201);
    // 7 counted: a hold of 4 no longer fits, and is not created.
    const over = await call("POST", `/v1/accounts/${a}/holds`, { hold_id: "h2", amount: 4 });
    expectVelocity(over, "per_minute", 7, 4);
    expectProblem(await call("GET", `/v1/accounts/${a}/holds/h2`), 404, "hold_not_found");
    expectVelocity(
      await call("POST", `/v1/accounts/${a}/receipts`, { receipt_id: "r2", amount: 4 }),
      "per_minute",
      7,
      4,
    );
    // Released: the 4 were reserved in this minute all the same.
    expect((await call("POST", `/v1/accounts/${a}/holds/h1/release`)).status).toBe(200);
    expectVelocity(await debit(a, 4), "per_minute", 7, 4);
    // Settling a receipt captures what was reserved already: no second count.
    expect((await call("POST", "/v1/receipts/settle", { receipt: receipt.json.receipt, used: 3 })).status).toBe(200);
    expect((await debit(a, 3)).status).toBe(200);
    expectVelocity(await debit(a, 1), "per_minute", 10, 1);
    expect((await balance(a)).available).toBe(10_000 - 3 - 3);
  });

  it("a limit set later counts from then on; removing it lets everything through", async () => {
    const a = await account(undefined);
    await alignClock(a, 1);
    expect((await debit(a, 50)).status).toBe(200);
    await call("PUT", `/v1/accounts/${a}`, { velocity: { credits: { per_minute: 10 } } });
    expect((await debit(a, 10)).status).toBe(200);
    expectVelocity(await debit(a, 1), "per_minute", 10, 1);
    await call("PUT", `/v1/accounts/${a}`, { velocity: null });
    expect((await debit(a, 500)).status).toBe(200);
    // Its counts went with it.
    await runInDurableObject(ledgerStubFor(a), (_i: AccountLedger, state) => {
      expect(state.storage.sql.exec("SELECT COUNT(*) AS n FROM velocity_buckets").one().n).toBe(0);
    });
  });
});

describe("velocity storage", () => {
  it("is written in the debit's own transaction: a debit that fails inside it counts nothing", async () => {
    const a = await account({ credits: { per_minute: 10 } });
    await alignClock(a, 1);
    const stub = ledgerStubFor(a);
    await runInDurableObject(stub, (inst: AccountLedger) => {
      inst.faults.beforeRecord = () => {
        throw new Error("injected: crash inside the debit's transaction");
      };
    });
    expectProblem(await debit(a, 8), 500, "internal_error");
    await runInDurableObject(stub, (inst: AccountLedger, state) => {
      inst.faults.beforeRecord = undefined;
      expect(state.storage.sql.exec("SELECT COUNT(*) AS n FROM velocity_buckets").one().n).toBe(0);
    });
    expect((await debit(a, 10)).status).toBe(200);
    expectVelocity(await debit(a, 1), "per_minute", 10, 1);
  });

  it("keeps one row per unit and minute, prunes rows a day old, and reloads the same counts from SQLite", async () => {
    const a = await account({ credits: { per_day: 1_000_000 } });
    await alignClock(a, 1);
    for (let m = 0; m < 3; m++) {
      expect((await debit(a, 2)).status).toBe(200);
      expect((await debit(a, 3)).status).toBe(200);
      await advanceClock(a, MIN);
    }
    const rows = () =>
      runInDurableObject(ledgerStubFor(a), (_i: AccountLedger, state) =>
        state.storage.sql.exec("SELECT minute, amount FROM velocity_buckets ORDER BY minute").toArray(),
      );
    const three = await rows();
    expect(three.map((r) => r.amount)).toEqual([5, 5, 5]);
    // A fresh cache (as after the object wakes) reads exactly what memory holds.
    await runInDurableObject(ledgerStubFor(a), (_i: AccountLedger, state) => {
      const book = new VelocityBook(state.storage.sql);
      expect(book.buckets("credits")).toEqual(three.map((r) => ({ minute: r.minute, amount: r.amount })));
    });
    await advanceClock(a, 1440 * MIN);
    expect((await debit(a, 7)).status).toBe(200);
    const after = await rows();
    expect(after.map((r) => r.amount)).toEqual([7]);
  });
});
