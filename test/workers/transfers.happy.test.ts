/**
 * Transfers between accounts: lots keep their terms and a pro rata cost
 * basis, replay and conflict, refusals move nothing, and a transfer
 * interrupted at any step is finished or undone exactly once by the
 * source's alarm.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
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
import { MINUTE, runCron } from "./jobs-helpers";

async function account(id = uid()) {
  const res = await call("PUT", `/v1/accounts/${id}`, { name: id });
  expect(res.status).toBe(201);
  return id;
}

const transfer = (from: string, to: string, amount: number, extra: Record<string, unknown> = {}) =>
  call("POST", "/v1/transfers", { transfer_id: uid("t"), from_account: from, to_account: to, amount, ...extra });

const available = async (id: string) => (await balance(id)).available as number;

describe("POST /v1/transfers", () => {
  it("moves credits into lots that keep type, priority, expiry and a pro rata cost basis", async () => {
    const [a, b] = [await account(), await account()];
    const expires = new Date(Date.now() + 86_400_000).toISOString();
    const g1 = await grant(a, {
      amount: 3,
      cost_basis: { amount: 100, currency: "USD" },
      priority: 5,
      expires_at: expires,
    });
    const res = await transfer(a, b, 2);
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({ status: "completed", from_account: a, to_account: b, amount: 2, unit: "credits" });
    expect(res.json.applied).toEqual([{ grant_id: g1.grant.grant_id, type: "purchased", amount: 2 }]);
    expect(await available(a)).toBe(1);
    expect(await available(b)).toBe(2);
    const lots = (await call("GET", `/v1/accounts/${b}/grants`)).json.grants;
    expect(lots).toHaveLength(1);
    // 2 of 3 credits bought for 100: floor(100·2/3) = 66 leaves with them; 34 stays behind.
    expect(lots[0]).toMatchObject({
      type: "purchased",
      priority: 5,
      amount: 2,
      expires_at: expires,
      source_grant_id: g1.grant.grant_id,
      cost_basis: { amount: 66, currency: "USD" },
    });
    const outs = (await ledgerEntries(a)).filter((e) => e.kind === "transfer.out");
    const ins = (await ledgerEntries(b)).filter((e) => e.kind === "transfer.in");
    expect(outs.map((e) => [e.amount, e.ref])).toEqual([[-2, res.json.transfer_id]]);
    expect(ins.map((e) => [e.amount, e.ref])).toEqual([[2, res.json.transfer_id]]);
    const got = await call("GET", `/v1/transfers/${res.json.transfer_id}`);
    expect(got.status).toBe(200);
    expect(got.json).toMatchObject({ status: "completed", from_account: a, to_account: b, amount: 2, unit: "credits" });
  });

  it("splits over several lots in consumption order, cost by the cumulative rule", async () => {
    const [a, b] = [await account(), await account()];
    await grant(a, { grant_id: `${a}-p`, amount: 10, type: "promotional", priority: 1 });
    await grant(a, { grant_id: `${a}-c`, amount: 7, cost_basis: { amount: 1000, currency: "EUR" }, priority: 2 });
    // One debit first: 3 of the 7 purchased credits have left (cost out floor(1000·3/7) = 428).
    expect((await debit(a, 13)).status).toBe(200);
    const res = await transfer(a, b, 4);
    expect(res.status).toBe(201);
    const lots = (await call("GET", `/v1/accounts/${b}/grants`)).json.grants;
    // The transfer takes the last 4: cost floor(1000·7/7) − 428 = 572.
    expect(lots.map((l: any) => [l.type, l.amount, l.cost_basis?.amount ?? null])).toEqual([["purchased", 4, 572]]);
    expect(await available(a)).toBe(0);
  });

  it("replays the same body, refuses another body under the same id, anywhere", async () => {
    const [a, b, c] = [await account(), await account(), await account()];
    await grant(a, { amount: 10 });
    const body = { transfer_id: uid("t"), from_account: a, to_account: b, amount: 4 };
    const first = await call("POST", "/v1/transfers", body);
    expect(first.status).toBe(201);
    const again = await call("POST", "/v1/transfers", { ...body });
    expect(again.status).toBe(201);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.json).toEqual(first.json);
    expectProblem(await call("POST", "/v1/transfers", { ...body, amount: 5 }), 409, "idempotency_conflict");
    expectProblem(await call("POST", "/v1/transfers", { ...body, to_account: c }), 409, "idempotency_conflict");
    expect([await available(a), await available(b), await available(c)]).toEqual([6, 4, 0]);
  });

  it("refuses short, unknown, oversized and malformed transfers, moving nothing", async () => {
    const [a, b] = [await account(), await account()];
    await grant(a, { amount: 5 });
    const short = await transfer(a, b, 6);
    expectProblem(short, 402, "insufficient_credits");
    expect(short.json).toMatchObject({ available: 5, requested: 6 });
    expectProblem(await transfer(a, uid("ghost"), 1), 404, "account_not_found");
    expectProblem(await transfer(uid("ghost"), a, 1), 404, "account_not_found");
    expectProblem(await transfer(a, a, 1), 400, "invalid_request");
    for (const amount of [0, -1, 1.5, "2", null, 10 ** 16]) {
      expectProblem(await transfer(a, b, amount as number), 400, "invalid_amount");
    }
    expectProblem(await transfer(a, b, 1, { extra: 1 }), 400, "invalid_request");
    expectProblem(await transfer(a, "bad id!", 1), 400, "invalid_request");
    expectProblem(
      await call("POST", "/v1/transfers", { from_account: a, to_account: b, amount: 1 }),
      400,
      "invalid_request",
    );
    expectProblem(await call("POST", "/v1/transfers", undefined, { raw: "{" }), 400, "invalid_json");
    expectProblem(await call("GET", `/v1/transfers/${uid("none")}`), 404, "transfer_not_found");
    expect([await available(a), await available(b)]).toEqual([5, 0]);
  });

  it("enforces roles and max_transfer_amount", async () => {
    const [a, b] = [await account(), await account()];
    await grant(a, { amount: 50 });
    const key = async (role: string, extra: Record<string, unknown> = {}) =>
      (await call("POST", "/v1/api-keys", { name: uid("k"), role, ...extra })).json.key as string;
    const support = await key("support");
    const capped = await key("finance", { max_transfer_amount: 10 });
    expectProblem(
      await call(
        "POST",
        "/v1/transfers",
        { transfer_id: uid("t"), from_account: a, to_account: b, amount: 1 },
        { token: support },
      ),
      403,
      "forbidden",
    );
    const over = { transfer_id: uid("t"), from_account: a, to_account: b, amount: 11 };
    expectProblem(await call("POST", "/v1/transfers", over, { token: capped }), 403, "grant_limit_exceeded");
    const ok = await call("POST", "/v1/transfers", { ...over, transfer_id: uid("t"), amount: 10 }, { token: capped });
    expect(ok.status).toBe(201);
    expect([await available(a), await available(b)]).toEqual([40, 10]);
  });

  it("never overspends a source under concurrent transfers and debits", async () => {
    const [a, b] = [await account(), await account()];
    await grant(a, { amount: 100 });
    const results = await Promise.all([
      ...Array.from({ length: 8 }, () => transfer(a, b, 15)),
      ...Array.from({ length: 8 }, () => debit(a, 10)),
    ]);
    const moved = results.slice(0, 8).filter((r) => r.status === 201).length * 15;
    const spent = results.slice(8).filter((r) => r.status === 200).length * 10;
    for (const r of results) expect([200, 201, 402]).toContain(r.status);
    expect(moved + spent).toBeLessThanOrEqual(100);
    expect(await available(a)).toBe(100 - moved - spent);
    expect(await available(b)).toBe(moved);
  });
});

type Step = "beforeApply" | "afterApply" | "duringCommit";

/** Sends a transfer whose source throws at `step` once; returns its id. */
async function interrupted(a: string, b: string, amount: number, step: Step, id = uid("t")): Promise<string> {
  await runInDurableObject(ledgerStubFor(a), (inst: AccountLedger) => {
    inst.transferFaults[step] = () => {
      delete inst.transferFaults[step];
      throw new Error(`injected: ${step}`);
    };
  });
  const res = await call("POST", "/v1/transfers", { transfer_id: id, from_account: a, to_account: b, amount });
  expect(res.status).toBe(500);
  return id;
}

describe("recovery", () => {
  it.each<[Step, string]>([
    ["beforeApply", "cancelled"],
    ["afterApply", "completed"],
    ["duringCommit", "completed"],
  ])("a transfer interrupted at %s ends %s after the alarm, once", async (step, final) => {
    const [a, b] = [await account(), await account()];
    await grant(a, { amount: 20, cost_basis: { amount: 700, currency: "USD" } });
    const id = await interrupted(a, b, 8, step);
    const mid = (await call("GET", `/v1/transfers/${id}`)).json.status;
    expect(mid).toBe(step === "duringCommit" ? "applied" : "preparing");
    await advanceClock(a, TRANSFER_RECOVER_AFTER_MS + 1);
    await runAlarm(a);
    await runAlarm(a);
    expect((await call("GET", `/v1/transfers/${id}`)).json.status).toBe(final);
    const [ea, eb] = [await available(a), await available(b)];
    expect(ea + eb).toBe(20);
    expect(eb).toBe(final === "completed" ? 8 : 0);
    // Applying late after a cancel is refused: the destination remembered its answer.
    const late = await runInDurableObject(ledgerStubFor(b), (inst: AccountLedger) =>
      inst.applyTransfer({
        transferId: id,
        from: a,
        unit: "credits",
        amount: 8,
        reason: null,
        slices: [],
        actor: "t",
        requestId: "t",
      }),
    );
    expect(late.state).toBe(final === "completed" ? "applied" : "refused");
    expect(await available(b)).toBe(eb);
    if (final === "cancelled") {
      // The credits came back with their cost: 700 − floor(700·12/20)… all 700 is deferred on the source again.
      const lots = (await call("GET", `/v1/accounts/${a}/grants`)).json.grants;
      const back = lots.filter((l: any) => l.source_grant_id !== null);
      expect(back.map((l: any) => [l.amount, l.cost_basis.amount])).toEqual([[8, 280]]);
    }
    // A retry with the same body answers the outcome and moves nothing more.
    const retry = await call("POST", "/v1/transfers", { transfer_id: id, from_account: a, to_account: b, amount: 8 });
    expect(retry.status).toBe(final === "completed" ? 201 : 409);
    expect(await available(a)).toBe(ea);
    expect(await available(b)).toBe(eb);
  });

  it("the cron backstop settles claims the gateway never saw end, from D1's index", async () => {
    const [a, b] = [await account(), await account()];
    await grant(a, { amount: 10 });
    const stuck = await interrupted(a, b, 4, "afterApply");
    const refusedId = uid("t");
    const short = await call("POST", "/v1/transfers", {
      transfer_id: refusedId,
      from_account: a,
      to_account: b,
      amount: 99,
    });
    expect(short.status).toBe(402);
    const state = async (id: string) =>
      (await env.DB.prepare("SELECT state FROM transfers WHERE transfer_id = ?").bind(id).first<{ state: string }>())
        ?.state;
    expect([await state(stuck), await state(refusedId)]).toEqual(["claimed", "claimed"]);
    await runCron(Date.now() + 2 * MINUTE);
    expect([await state(stuck), await state(refusedId)]).toEqual(["completed", "refused"]);
    expect((await call("GET", `/v1/transfers/${stuck}`)).json.status).toBe("completed");
    expect([await available(a), await available(b)]).toEqual([6, 4]);
    // A refused id can be sent again with the same body once credits arrive.
    await grant(a, { amount: 100 });
    const again = await call("POST", "/v1/transfers", {
      transfer_id: refusedId,
      from_account: a,
      to_account: b,
      amount: 99,
    });
    expect(again.status).toBe(201);
    expect(await state(refusedId)).toBe("completed");
  });

  it("property: under failures at any step, interleaved debits and racing retries, each transfer lands once or not at all", async () => {
    type Resume = "alarm" | "retry" | "both";
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            amount: fc.integer({ min: 1, max: 30 }),
            fault: fc.constantFrom<Step | null>(null, "beforeApply", "afterApply", "duringCommit"),
            resume: fc.constantFrom<Resume>("alarm", "retry", "both"),
            debitAfter: fc.integer({ min: 0, max: 10 }),
          }),
          { minLength: 1, maxLength: 4 },
        ),
        async (ops) => {
          const [a, b] = [await account(), await account()];
          await grant(a, { amount: 60 });
          // The reference model: what left A for good (debits, completed transfers) and what reached B.
          let spent = 0;
          let moved = 0;
          let inFlight = 0;
          const open: { id: string; amount: number; fault: Step; resume: Resume }[] = [];
          for (const op of ops) {
            const id = uid("t");
            const body = { transfer_id: id, from_account: a, to_account: b, amount: op.amount };
            if (op.fault === null) {
              const res = await call("POST", "/v1/transfers", body);
              if (res.status === 201) moved += op.amount;
              else expect(res.status).toBe(402);
            } else if (60 - spent - moved - inFlight >= op.amount) {
              await interrupted(a, b, op.amount, op.fault, id);
              open.push({ id, amount: op.amount, fault: op.fault, resume: op.resume });
              inFlight += op.amount;
            }
            if (op.debitAfter > 0) {
              const d = await debit(a, op.debitAfter);
              if (d.status === 200) spent += op.debitAfter;
              else expect(d.status).toBe(402);
            }
          }
          // Resume every interrupted transfer: the source's alarm, a client retry with the same body, or both at once.
          // The sweep runs in every case, racing the retries: with a retry, either may settle first.
          const retries = new Map(
            open
              .filter((t) => t.resume !== "alarm")
              .map((t) => [
                t.id,
                call("POST", "/v1/transfers", { transfer_id: t.id, from_account: a, to_account: b, amount: t.amount }),
              ]),
          );
          const sweep = (async () => {
            await advanceClock(a, TRANSFER_RECOVER_AFTER_MS + 1);
            await runAlarm(a);
          })();
          const answered = new Map<string, number>();
          for (const [id, r] of retries) answered.set(id, (await r).status);
          await sweep;
          await runAlarm(a);
          for (const t of open) {
            const status = (await call("GET", `/v1/transfers/${t.id}`)).json.status;
            // Only a transfer the destination never saw may be undone; the sweep alone always undoes it.
            const allowed =
              t.fault !== "beforeApply"
                ? ["completed"]
                : t.resume === "alarm"
                  ? ["cancelled"]
                  : ["completed", "cancelled"];
            expect(allowed).toContain(status);
            // A retry's answer is the transfer's outcome: 201 completed, 409 cancelled.
            const retried = answered.get(t.id);
            if (retried !== undefined) expect(retried).toBe(status === "completed" ? 201 : 409);
            if (status === "completed") moved += t.amount;
          }
          expect(await available(a)).toBe(60 - spent - moved);
          expect(await available(b)).toBe(moved);
          const ins = (await ledgerEntries(b)).filter((e) => e.kind === "transfer.in");
          for (const t of open)
            expect(ins.filter((e) => e.ref === t.id).reduce((n, e) => n + e.amount, 0)).toBe(
              (await call("GET", `/v1/transfers/${t.id}`)).json.status === "completed" ? t.amount : 0,
            );
        },
      ),
      { numRuns: 25 },
    );
  });
});
