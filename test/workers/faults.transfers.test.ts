/**
 * A transfer and a budget draw interrupted at each step (the seams of
 * src/account/transfers.ts and budget.ts, and a destination or parent whose
 * commit throws), sometimes with the source's Durable Object reset on top,
 * then recovered by the alarm: credits moved exactly once or not at all,
 * never lost; afterwards every invariant holds on both accounts and
 * reconciliation reports zero drift.
 */
import { runInDurableObject } from "cloudflare:test";
import { afterAll, describe, expect, it } from "vitest";
import type { AccountLedger } from "../../src/account/account-do";
import { TRANSFER_RECOVER_AFTER_MS } from "../../src/account/transfers";
import { checkAccount, printReliability, reconcileClean, resetObject, scenarioDone, seamThrow } from "./faults-helpers";
import { advanceClock, balance, call, debit, grant, ledgerStubFor, runAlarm, uid } from "./helpers";

afterAll(() => printReliability("transfers"));

const available = async (id: string) => (await balance(id)).available as number;
const stub = (a: string) => ledgerStubFor(a);

async function account(body: Record<string, unknown> = {}) {
  const id = uid("ft");
  expect((await call("PUT", `/v1/accounts/${id}`, body)).status).toBe(201);
  return id;
}

/** Where a transfer is cut: a step of the source, or the destination's commit. */
type Cut = "beforeApply" | "afterApply" | "duringCommit" | "destinationCommit";

async function arm(a: string, b: string, cut: Cut): Promise<void> {
  if (cut === "destinationCommit") {
    await runInDurableObject(stub(b), (inst: AccountLedger) => {
      inst.faults.beforeRecord = seamThrow(`transfer ${cut}`);
    });
    return;
  }
  await runInDurableObject(stub(a), (inst: AccountLedger) => {
    inst.transferFaults[cut] = seamThrow(`transfer ${cut}`);
  });
}

/** The alarm of `a` after the recovery delay, twice (the second finds nothing left). */
async function recover(a: string) {
  await advanceClock(a, TRANSFER_RECOVER_AFTER_MS + 1);
  await runAlarm(a);
  await runAlarm(a);
}

describe("a transfer interrupted at each step", () => {
  it.each<[Cut, boolean, string]>([
    ["beforeApply", false, "cancelled"],
    ["afterApply", false, "completed"],
    ["duringCommit", false, "completed"],
    ["destinationCommit", false, "cancelled"],
    ["afterApply", true, "completed"],
    ["beforeApply", true, "cancelled"],
  ])("cut at %s (source reset too: %s) ends %s, moved once or not at all", async (cut, reset, final) => {
    const [a, b] = [await account(), await account()];
    await grant(a, { amount: 20, cost_basis: { amount: 700, currency: "USD" } });
    await grant(b, { amount: 3 });
    await arm(a, b, cut);
    const id = uid("t");
    const res = await call("POST", "/v1/transfers", { transfer_id: id, from_account: a, to_account: b, amount: 8 });
    expect([500, 503]).toContain(res.status);
    // Never lost in the middle: the credits are with the transfer (a's total is down, b has not got them yet)
    // or already applied at b.
    if (reset) await resetObject(a);
    await runInDurableObject(stub(b), (inst: AccountLedger) => {
      delete inst.faults.beforeRecord;
    });
    await recover(a);
    expect((await call("GET", `/v1/transfers/${id}`)).json.status).toBe(final);
    const moved = final === "completed" ? 8 : 0;
    expect([await available(a), await available(b)]).toEqual([20 - moved, 3 + moved]);
    // A client retry afterwards learns the outcome and moves nothing more.
    const again = await call("POST", "/v1/transfers", { transfer_id: id, from_account: a, to_account: b, amount: 8 });
    expect(again.status).toBe(final === "completed" ? 201 : 409);
    expect([await available(a), await available(b)]).toEqual([20 - moved, 3 + moved]);
    const [ea, eb] = [await checkAccount(a), await checkAccount(b)];
    expect(eb.filter((e) => e.kind === "transfer.in" && e.ref === id).length).toBe(moved > 0 ? 1 : 0);
    expect(ea.filter((e) => e.kind === "transfer.out" && e.ref === id).length).toBe(1);
    await reconcileClean([a, b]);
    scenarioDone();
  });
});

/** A parent with `credits` and one budgeted child with `limit` a month. */
async function tree(credits: number, limit: number) {
  const parent = await account();
  await grant(parent, { amount: credits, cost_basis: { amount: credits * 10, currency: "USD" } });
  const kid = await account({ parent_id: parent });
  expect((await call("PUT", `/v1/accounts/${kid}/budget`, { period: "month", limit })).status).toBe(200);
  return { parent, kid };
}

describe("a budget draw interrupted at each step", () => {
  it("after the parent gave, before the child applied: the child's alarm finishes it once", async () => {
    const { parent, kid } = await tree(30, 30);
    await runInDurableObject(stub(kid), (inst: AccountLedger) => {
      inst.budgetFaults.afterGive = seamThrow("draw afterGive");
    });
    expect((await debit(kid, 8)).status).toBe(500);
    expect([await available(parent), await available(kid)]).toEqual([22, 0]);
    await resetObject(kid);
    await recover(kid);
    expect([await available(parent), await available(kid)]).toEqual([22, 8]);
    const ek = await checkAccount(kid);
    expect(ek.filter((e) => e.kind === "transfer.in").length).toBe(1);
    await checkAccount(parent);
    expect((await call("GET", `/v1/accounts/${kid}/budget`)).json.used).toBe(8);
    await reconcileClean([parent, kid]);
    scenarioDone();
  });

  it("the parent's give fails: the child's alarm finishes the draw once, and a retry spends it without drawing again", async () => {
    const { parent, kid } = await tree(30, 30);
    await runInDurableObject(stub(parent), (inst: AccountLedger) => {
      inst.faults.beforeRecord = seamThrow("draw parent give");
    });
    const id = uid("d");
    const first = await call("POST", `/v1/accounts/${kid}/debits`, { debit_id: id, amount: 8 });
    expect([500, 503]).toContain(first.status);
    expect([await available(parent), await available(kid)]).toEqual([30, 0]);
    await recover(kid);
    // The draw stayed pending; recovery asked the parent again and it gave, once.
    expect([await available(parent), await available(kid)]).toEqual([22, 8]);
    // The same debit again: covered by the drawn credits, no second draw.
    const retry = await call("POST", `/v1/accounts/${kid}/debits`, { debit_id: id, amount: 8 });
    expect(retry.status).toBe(200);
    expect([await available(parent), await available(kid)]).toEqual([22, 0]);
    const ek = await checkAccount(kid);
    expect(ek.filter((e) => e.kind === "transfer.in").length).toBe(1);
    expect(ek.filter((e) => e.kind === "debit" && e.ref === id).length).toBe(1);
    await checkAccount(parent);
    expect((await call("GET", `/v1/accounts/${kid}/budget`)).json.used).toBe(8);
    await reconcileClean([parent, kid]);
    scenarioDone();
  });
});
