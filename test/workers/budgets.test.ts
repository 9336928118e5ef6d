/**
 * Department budgets: a child short of credits draws the shortfall from its
 * parent, exactly once, never past the period's budget nor the parent's
 * credits; the drawdown report reads what was drawn and consumed.
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { AccountLedger } from "../../src/account/account-do";
import { TRANSFER_RECOVER_AFTER_MS } from "../../src/account/transfers";
import {
  advanceClock,
  balance,
  call,
  debit,
  expectProblem,
  grant,
  ledgerEntries,
  ledgerStubFor,
  runAlarm,
  uid,
} from "./helpers";

async function tree(parentCredits: number, children: number, limit: number | null) {
  const parent = uid("org");
  expect((await call("PUT", `/v1/accounts/${parent}`, {})).status).toBe(201);
  if (parentCredits > 0)
    await grant(parent, { amount: parentCredits, cost_basis: { amount: parentCredits * 10, currency: "USD" } });
  const kids: string[] = [];
  for (let i = 0; i < children; i++) {
    const kid = uid("dept");
    expect((await call("PUT", `/v1/accounts/${kid}`, { parent_id: parent })).status).toBe(201);
    if (limit !== null) {
      const put = await call("PUT", `/v1/accounts/${kid}/budget`, { period: "month", limit });
      expect(put.status).toBe(200);
    }
    kids.push(kid);
  }
  return { parent, kids };
}

const available = async (id: string) => (await balance(id)).available as number;

describe("budget draws", () => {
  it("draws only the shortfall, with transfer entries on both sides", async () => {
    const { parent, kids } = await tree(100, 1, 30);
    const kid = kids[0] as string;
    await grant(kid, { amount: 5, type: "promotional" });
    const res = await debit(kid, 12);
    expect(res.status).toBe(200);
    expect([await available(parent), await available(kid)]).toEqual([93, 0]);
    const ins = (await ledgerEntries(kid)).filter((e) => e.kind === "transfer.in");
    const outs = (await ledgerEntries(parent)).filter((e) => e.kind === "transfer.out");
    expect(ins.map((e) => e.amount)).toEqual([7]);
    expect(outs.map((e) => e.amount)).toEqual([-7]);
    expect(ins[0].ref).toBe(outs[0].ref);
    const lot = (await call("GET", `/v1/accounts/${kid}/grants`)).json.grants.find(
      (g: any) => g.source === "budget_draw",
    );
    // 7 of 100 credits bought for 1000: floor(1000·7/100) = 70 comes with them.
    expect(lot).toMatchObject({ amount: 7, type: "purchased", cost_basis: { amount: 70, currency: "USD" } });
    const b = await call("GET", `/v1/accounts/${kid}/budget`);
    expect(b.json).toMatchObject({ unit: "credits", period: "month", limit: 30, used: 7, remaining: 23 });
    expect(b.json.period_start).toMatch(/-01T00:00:00\.000Z$/);
  });

  it("usage events of a budgeted child draw from the parent too, in order, until the budget is spent", async () => {
    const { parent, kids } = await tree(100, 1, 25);
    const kid = kids[0] as string;
    await grant(kid, { amount: 4 });
    const events = [10, 10, 10, 2].map((amount, i) => ({ event_id: uid(`u${i}`), account_id: kid, amount }));
    const res = await call("POST", "/v1/usage", { events });
    expect(res.status).toBe(200);
    // By hand: 4 own + 25 drawable = 29. 10 (own 4 + draw 6), 10 (draw 10), then 10 > 9 left: 402, then 2 (draw 2).
    expect(res.json.results.map((r: any) => r.status)).toEqual([200, 200, 402, 200]);
    expect(res.json.results[2]).toMatchObject({ code: "insufficient_credits", available: 9, requested: 10 });
    expect([await available(parent), await available(kid)]).toEqual([82, 0]);
    expect((await call("GET", `/v1/accounts/${kid}/budget`)).json).toMatchObject({ used: 18, remaining: 7 });
    const ins = (await ledgerEntries(kid)).filter((e) => e.kind === "transfer.in").map((e) => e.amount);
    expect(ins).toEqual([6, 10, 2]);
    // The same batch again replays every event and draws nothing more.
    const again = await call("POST", "/v1/usage", { events });
    expect(again.json.results.map((r: any) => r.status)).toEqual([200, 200, 402, 200]);
    expect([await available(parent), await available(kid)]).toEqual([82, 0]);
  });

  it("refuses past the budget or the parent's credits with available = own + drawable, moving nothing", async () => {
    const { parent, kids } = await tree(20, 1, 50);
    const kid = kids[0] as string;
    await grant(kid, { amount: 3 });
    // Budget allows 50 but the parent has 20: 3 + 20 = 23 available.
    const short = await debit(kid, 24);
    expectProblem(short, 402, "insufficient_credits");
    expect(short.json).toMatchObject({ available: 23, requested: 24 });
    expect([await available(parent), await available(kid)]).toEqual([20, 3]);
    const { kids: capped } = await tree(100, 1, 10);
    const c = capped[0] as string;
    const over = await debit(c, 11);
    expectProblem(over, 402, "insufficient_credits");
    expect(over.json).toMatchObject({ available: 10, requested: 11 });
    expect((await call("GET", `/v1/accounts/${c}/budget`)).json.used).toBe(0);
  });

  it("holds and receipts draw as debits do; a child without a budget never draws", async () => {
    const { parent, kids } = await tree(50, 2, 40);
    const [kid, other] = kids as [string, string];
    const hold = await call("POST", `/v1/accounts/${kid}/holds`, { hold_id: uid("h"), amount: 15, ttl_seconds: 60 });
    expect(hold.status).toBe(201);
    expect(await available(parent)).toBe(35);
    expect((await call("DELETE", `/v1/accounts/${other}/budget`)).status).toBe(200);
    expectProblem(await debit(other, 1), 402, "insufficient_credits");
    expect(await available(parent)).toBe(35);
  });

  it("concurrent debits of several children never pass a budget or the parent's pool", async () => {
    const { parent, kids } = await tree(100, 4, 40);
    const results = await Promise.all(kids.flatMap((k) => Array.from({ length: 6 }, () => debit(k, 9))));
    for (const r of results) expect([200, 402]).toContain(r.status);
    let total = 0;
    for (const [i, k] of kids.entries()) {
      const ok = results.slice(i * 6, i * 6 + 6).filter((r) => r.status === 200).length;
      const used = (await call("GET", `/v1/accounts/${k}/budget`)).json.used;
      expect(used).toBeLessThanOrEqual(40);
      expect(ok * 9).toBeLessThanOrEqual(used);
      total += used;
      // What was drawn and not yet spent is the child's own now.
      expect(await available(k)).toBe(used - ok * 9);
    }
    expect(total).toBeLessThanOrEqual(100);
    expect(await available(parent)).toBe(100 - total);
  });

  it("a draw interrupted after the parent gave is finished once by the child's alarm", async () => {
    const { parent, kids } = await tree(30, 1, 30);
    const kid = kids[0] as string;
    await runInDurableObject(ledgerStubFor(kid), (inst: AccountLedger) => {
      inst.budgetFaults.afterGive = () => {
        delete inst.budgetFaults.afterGive;
        throw new Error("injected: afterGive");
      };
    });
    expect((await debit(kid, 8)).status).toBe(500);
    expect([await available(parent), await available(kid)]).toEqual([22, 0]);
    await advanceClock(kid, TRANSFER_RECOVER_AFTER_MS + 1);
    await runAlarm(kid);
    await runAlarm(kid);
    expect([await available(parent), await available(kid)]).toEqual([22, 8]);
    expect((await ledgerEntries(kid)).filter((e) => e.kind === "transfer.in")).toHaveLength(1);
  });

  it("keeps the plain debit synchronous: only a budgeted child short of credits awaits a draw", async () => {
    const { kids } = await tree(10, 1, 5);
    const kid = kids[0] as string;
    const plain = uid("plain");
    await grant(plain, { amount: 5 });
    await grant(kid, { amount: 5 });
    const ctx = (accountId: string) => ({ accountId, actor: "test:gateway", requestId: "t", globalPolicy: null });
    const shapes = async (id: string, amounts: number[]) =>
      runInDurableObject(ledgerStubFor(id), async (inst: AccountLedger) => {
        const out: boolean[] = [];
        for (const [i, amount] of amounts.entries()) {
          const r = inst.debit(
            ctx(id),
            { id: `s${i}`, unit: "credits", amount, metadata: null },
            { key: `s${i}`, bodyHash: "h" },
          );
          out.push(r instanceof Promise);
          await r;
        }
        return out;
      });
    // Covered by own lots, or short without a budget: answered synchronously.
    expect(await shapes(plain, [2, 9])).toEqual([false, false]);
    // The budgeted child: covered → synchronous; short → a draw from the parent.
    expect(await shapes(kid, [2, 6])).toEqual([false, true]);
    expect(await available(kid)).toBe(0);
  });

  it("refuses bad budgets and budgets on a root", async () => {
    const { parent, kids } = await tree(0, 1, null);
    const kid = kids[0] as string;
    // A root may hold a budget, but with no parent it draws nothing.
    expect((await call("PUT", `/v1/accounts/${parent}/budget`, { period: "month", limit: 5 })).status).toBe(200);
    expectProblem(await debit(parent, 1), 402, "insufficient_credits");
    for (const body of [
      { period: "year", limit: 5 },
      { period: "day", limit: 5, extra: true },
      { period: "day", limit: 5, unit: "Bad" },
    ]) {
      expectProblem(await call("PUT", `/v1/accounts/${kid}/budget`, body), 400, "invalid_request");
    }
    for (const limit of [0, -1, 1.5, "5", null, 10 ** 16]) {
      expectProblem(await call("PUT", `/v1/accounts/${kid}/budget`, { period: "day", limit }), 400, "invalid_amount");
    }
    expectProblem(await call("PUT", `/v1/accounts/${kid}/budget`, undefined, { raw: "{" }), 400, "invalid_json");
    expectProblem(await call("GET", `/v1/accounts/${kid}/budget`), 404, "not_found");
    expectProblem(
      await call("PUT", `/v1/accounts/${uid("ghost")}/budget`, { period: "day", limit: 5 }),
      404,
      "account_not_found",
    );
    const viewer = (await call("POST", "/v1/api-keys", { name: uid("k"), role: "support" })).json.key;
    expectProblem(
      await call("PUT", `/v1/accounts/${kid}/budget`, { period: "day", limit: 5 }, { token: viewer }),
      403,
      "forbidden",
    );
  });
});

describe("budget changes are audited", () => {
  it("PUT and DELETE write budget.updated and budget.deleted with before and after", async () => {
    const { kids } = await tree(10, 1, null);
    const kid = kids[0] as string;
    expect((await call("PUT", `/v1/accounts/${kid}/budget`, { period: "month", limit: 30 })).status).toBe(200);
    expect((await call("PUT", `/v1/accounts/${kid}/budget`, { period: "day", limit: 5 })).status).toBe(200);
    expect((await call("DELETE", `/v1/accounts/${kid}/budget`)).status).toBe(200);
    const audit = await call("GET", `/v1/audit?target=${kid}&limit=100`);
    expect(audit.status).toBe(200);
    const rows = audit.json.events.filter((e: any) => e.action.startsWith("budget."));
    expect(rows.map((e: any) => e.action)).toEqual(["budget.updated", "budget.updated", "budget.deleted"]);
    expect(rows[0].before).toBeNull();
    expect(rows[0].after).toMatchObject({ period: "month", limit: 30 });
    expect(rows[1].before).toMatchObject({ period: "month", limit: 30 });
    expect(rows[1].after).toMatchObject({ period: "day", limit: 5 });
    expect(rows[2].before).toMatchObject({ period: "day", limit: 5 });
    expect(rows[2].after).toBeNull();
    for (const e of rows) expect(e.actor).toBe("admin-token:admin");
  });
});

describe("GET /v1/reports/drawdown", () => {
  it("reports per child what was drawn, consumed and the budget", async () => {
    const { parent, kids } = await tree(100, 2, 25);
    const [a, b] = kids as [string, string];
    await grant(b, { amount: 4 });
    expect((await debit(a, 10)).status).toBe(200);
    expect((await debit(b, 6)).status).toBe(200);
    for (const id of [parent, a, b]) await runInDurableObject(ledgerStubFor(id), (inst: AccountLedger) => inst.drain());
    const now = new Date();
    const from = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)).toISOString();
    const to = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)).toISOString();
    const res = await call("GET", `/v1/reports/drawdown?parent_id=${parent}&period=month&from=${from}&to=${to}`);
    expect(res.status).toBe(200);
    const rows = res.json.periods[0].children;
    const budget = { unit: "credits", period: "month", limit: 25 };
    expect(rows).toEqual(
      [
        { account_id: a, drawn: 10, consumed: 10, budget },
        { account_id: b, drawn: 2, consumed: 6, budget },
      ].sort((x, y) => x.account_id.localeCompare(y.account_id)),
    );
    expectProblem(
      await call("GET", `/v1/reports/drawdown?parent_id=${parent}&from=${to}&to=${from}`),
      400,
      "invalid_request",
    );
    expectProblem(await call("GET", `/v1/reports/drawdown?from=${from}&to=${to}`), 400, "invalid_request");
  });

  it("shows a child's budget under the parent it has now: set before it had one, or moved since", async () => {
    const { parent: first, kids } = await tree(0, 1, 30);
    const moved = kids[0] as string;
    const second = uid("org");
    expect((await call("PUT", `/v1/accounts/${second}`, {})).status).toBe(201);
    const orphan = uid("dept");
    expect((await call("PUT", `/v1/accounts/${orphan}`, {})).status).toBe(201);
    expect((await call("PUT", `/v1/accounts/${orphan}/budget`, { period: "month", limit: 7 })).status).toBe(200);
    expect((await call("PUT", `/v1/accounts/${orphan}`, { parent_id: second })).status).toBe(200);
    expect((await call("PUT", `/v1/accounts/${moved}`, { parent_id: second })).status).toBe(200);
    for (const id of [first, second, moved, orphan])
      await runInDurableObject(ledgerStubFor(id), (inst: AccountLedger) => inst.drain());
    const now = new Date();
    const from = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)).toISOString();
    const to = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)).toISOString();
    const report = async (parent: string) =>
      (await call("GET", `/v1/reports/drawdown?parent_id=${parent}&period=month&from=${from}&to=${to}`)).json;
    const rows = (await report(second)).periods[0].children;
    expect(rows).toEqual(
      [
        { account_id: moved, drawn: 0, consumed: 0, budget: { unit: "credits", period: "month", limit: 30 } },
        { account_id: orphan, drawn: 0, consumed: 0, budget: { unit: "credits", period: "month", limit: 7 } },
      ].sort((x, y) => x.account_id.localeCompare(y.account_id)),
    );
    expect(JSON.stringify(await report(first))).not.toContain(moved);
  });
});
