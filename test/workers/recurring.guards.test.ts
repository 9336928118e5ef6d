/**
 * What keeps a recurring schedule from being turned against the ledger:
 * the ids its periods take are reserved (no other grant takes them, and a
 * schedule is refused when a lot already has one), a catch-up cut short by
 * its step bound never lets the generic expiry write off a rollover, a
 * back-dated start issues a bounded number of periods, and a schedule above
 * the grant approval threshold waits for a second key.
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { AccountLedger } from "../../src/account/account-do";
import { RECURRING_MAX_BACKFILL } from "../../src/account/recurring";
import { RECURRING_ID_MAX } from "../../src/api/recurring";
import { call, expectProblem, iso, ledgerEntries, ledgerStubFor, runAlarm, uid } from "./helpers";
import { DAY, doNow, dropAlarm, MINUTE, setDoClock } from "./jobs-helpers";

async function account(): Promise<string> {
  const a = uid("recg");
  expect((await call("PUT", `/v1/accounts/${a}`, { name: "guards" })).status).toBe(201);
  return a;
}

const daily = (id: string, extra: Record<string, unknown> = {}) => ({
  recurring_id: id,
  amount: 100,
  type: "promotional",
  interval: "day",
  expires: "end_of_period",
  ...extra,
});

describe("the lot ids a schedule issues are reserved", () => {
  it("a plain grant may not take a period's or a rollover's id; another id with the same prefix is fine", async () => {
    const a = await account();
    expect((await call("POST", `/v1/accounts/${a}/recurring-grants`, daily("p"))).status).toBe(201);
    for (const id of ["p.2", "p.7.rollover"]) {
      const res = await call("POST", `/v1/accounts/${a}/grants`, { grant_id: id, amount: 500, type: "purchased" });
      expectProblem(res, 409, "idempotency_conflict");
    }
    for (const id of ["p.x", "p.0", "pp.2"]) {
      const res = await call("POST", `/v1/accounts/${a}/grants`, { grant_id: id, amount: 5, type: "purchased" });
      expect(res.status, `${id}: ${res.text}`).toBe(201);
    }
    // An awaiting-payment grant may not take one either.
    const awaiting = await call("POST", `/v1/accounts/${a}/grants`, {
      grant_id: "p.3",
      amount: 5,
      type: "purchased",
      awaiting_payment: true,
    });
    expectProblem(awaiting, 409, "idempotency_conflict");
  });

  it("a schedule is refused when a lot already has one of its ids, and nothing is issued", async () => {
    const a = await account();
    expect(
      (await call("POST", `/v1/accounts/${a}/grants`, { grant_id: "q.2", amount: 500, type: "purchased" })).status,
    ).toBe(201);
    expectProblem(await call("POST", `/v1/accounts/${a}/recurring-grants`, daily("q")), 409, "idempotency_conflict");
    const list = await call("GET", `/v1/accounts/${a}/recurring-grants`);
    expect(list.json.recurring_grants).toEqual([]);
    expect((await ledgerEntries(a)).map((e) => e.grant_id)).toEqual(["q.2"]);
  });

  it(`recurring_id is at most ${RECURRING_ID_MAX} characters, so its rollover lots keep valid ids`, async () => {
    const a = await account();
    const long = "r".repeat(RECURRING_ID_MAX + 1);
    expectProblem(await call("POST", `/v1/accounts/${a}/recurring-grants`, daily(long)), 400, "invalid_request");
    const ok = await call("POST", `/v1/accounts/${a}/recurring-grants`, daily("r".repeat(RECURRING_ID_MAX)));
    expect(ok.status, ok.text).toBe(201);
  });
});

describe("a catch-up cut short never loses a rollover", () => {
  it("two daily schedules 20 days behind (80 steps > 64 per call): every ended period rolls 50 and expires 50", async () => {
    const a = await account();
    const rollover = { max_amount: 50, max_periods: 12 };
    for (const id of ["A", "B"]) {
      const res = await call("POST", `/v1/accounts/${a}/recurring-grants`, daily(id, { rollover }));
      expect(res.status, res.text).toBe(201);
    }
    const start = await doNow(a);
    await setDoClock(a, start + 20 * DAY + MINUTE);
    for (let i = 0; i < 4; i++) await runAlarm(a);
    const entries = await ledgerEntries(a);
    for (const id of ["A", "B"]) {
      // Periods 1..20 have ended (period 21 is live): each had 100 unspent, so 50 rolled and 50 expired.
      for (let n = 1; n <= 20; n++) {
        const mine = entries.filter((e) => e.grant_id === `${id}.${n}`);
        expect(
          mine.map((e) => [e.kind, e.amount]),
          `${id}.${n}`,
        ).toEqual([
          ["grant", 100],
          ["grant.rolled_over", -50],
          ["grant.expired", -50],
        ]);
      }
      expect(entries.filter((e) => e.grant_id === `${id}.21`).map((e) => e.kind)).toEqual(["grant"]);
    }
  });
});

describe("a back-dated schedule issues a bounded number of periods", () => {
  it(`at most ${RECURRING_MAX_BACKFILL} periods may have begun when it is created`, async () => {
    const a = await account();
    const now = await doNow(a);
    const tooOld = iso(now - RECURRING_MAX_BACKFILL * DAY - MINUTE);
    expectProblem(
      await call("POST", `/v1/accounts/${a}/recurring-grants`, daily("old", { starts_at: tooOld })),
      400,
      "invalid_request",
    );
    expect(await ledgerEntries(a)).toEqual([]);
    const res = await call(
      "POST",
      `/v1/accounts/${a}/recurring-grants`,
      daily("recent", { starts_at: iso(now - (RECURRING_MAX_BACKFILL - 1) * DAY - MINUTE), expires: "never" }),
    );
    expect(res.status, res.text).toBe(201);
    const grants = (await ledgerEntries(a)).filter((e) => e.kind === "grant");
    expect(grants.length).toBe(RECURRING_MAX_BACKFILL);
  });
});

describe("four eyes on a schedule", () => {
  it("a per-period amount above the grant threshold waits for a second key, then runs once", async () => {
    const a = await account();
    expect((await call("PUT", `/v1/accounts/${a}/policy`, { approval_threshold: { grant: 500 } })).status).toBe(200);
    const key = await call("POST", "/v1/api-keys", { name: uid("rec-fin"), role: "finance" });
    const token = key.json.key as string;
    const small = await call("POST", `/v1/accounts/${a}/recurring-grants`, daily("small", { amount: 500 }), { token });
    expect(small.status, small.text).toBe(201);

    const body = daily("big", { amount: 501, expires: "never" });
    const asked = await call("POST", `/v1/accounts/${a}/recurring-grants`, body, { token });
    expect(asked.status, asked.text).toBe(202);
    expect(asked.json).toMatchObject({ status: "pending", kind: "recurring_grant" });
    const listed = await call("GET", `/v1/accounts/${a}/recurring-grants`);
    expect(listed.json.recurring_grants.map((r: { recurring_id: string }) => r.recurring_id)).toEqual(["small"]);
    // The asker may not approve its own request.
    expectProblem(
      await call("POST", `/v1/approvals/${asked.json.approval_id}/approve`, {}, { token }),
      403,
      "forbidden",
    );

    const approved = await call("POST", `/v1/approvals/${asked.json.approval_id}/approve`, {});
    expect(approved.status, approved.text).toBe(201);
    expect(approved.json).toMatchObject({ recurring_id: "big", amount: 501, status: "active" });
    const again = await call("POST", `/v1/approvals/${asked.json.approval_id}/approve`, {});
    expect(again.status).toBe(201);
    const grants = (await ledgerEntries(a)).filter((e) => e.kind === "grant");
    expect(grants.map((e) => [e.grant_id, e.amount])).toEqual([
      ["small.1", 500],
      ["big.1", 501],
    ]);
    // The same request again, now that it ran, is the schedule's own replay.
    const repeat = await call("POST", `/v1/accounts/${a}/recurring-grants`, body, { token });
    expect(repeat.status).toBe(201);
    expect(repeat.headers.get("idempotent-replayed")).toBe("true");
  });
});

describe("a schedule that starts later", () => {
  it("arms the account's alarm for its first period, with nothing else to wake it", async () => {
    const a = await account();
    await runAlarm(a); // ship what the PUT wrote
    await dropAlarm(a); // and leave no alarm behind: only the schedule may arm one
    const now = await doNow(a);
    const startsAt = now + 3 * DAY;
    const res = await call("POST", `/v1/accounts/${a}/recurring-grants`, daily("later", { starts_at: iso(startsAt) }));
    expect(res.status, res.text).toBe(201);
    const alarm = await runInDurableObject(ledgerStubFor(a), async (inst: AccountLedger, state) => {
      return { at: await state.storage.getAlarm(), offset: inst.clock.offsetMs };
    });
    expect(alarm.at).not.toBeNull();
    // The alarm is set on the real clock: the DO clock's start minus the test offset.
    expect((alarm.at as number) + alarm.offset).toBeLessThanOrEqual(startsAt);
  });
});
