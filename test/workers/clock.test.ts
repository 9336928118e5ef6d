/**
 * Issue 13, "Clock": what is decided by time is decided by the account's own
 * Durable Object clock, never the Worker's nor the cron's scheduled time.
 * Two twin accounts get the same lots, holds, receipts and schedules; only
 * one twin's DO clock moves (advanceClock), and then the cron runs at a
 * scheduled time far in the future. The moved twin expires, sweeps and
 * issues; the other does nothing. Usage events are judged against the
 * account's clock with MAX_CLOCK_SKEW_MS on either side of the bound.
 *
 * Already pinned elsewhere (not repeated here): the expiry instant itself
 * (consumption.happy: drawable until expires_at, not at it), the hold sweep
 * at the deadline with either hold_on_expiry (holds.happy), the receipt
 * settle grace (receipts.happy), clock_skew per event and against a clock
 * an hour ahead (usage.happy), velocity windows sliding with the DO clock
 * (velocity.happy), 13 recurring periods and the alarm/cron race at each
 * boundary (recurring.happy), activation's single read of the clock
 * (topup.fixes), as_of reads (as-of.test).
 */
import { describe, expect, it } from "vitest";
import { DEFAULT_MAX_CLOCK_SKEW_MS } from "../../src/api/usage";
import { advanceClock, balance, call, grant, iso, ledgerEntries, runAlarm, uid } from "./helpers";
import { DAY, doNow, runCron } from "./jobs-helpers";

const MAX_SKEW = DEFAULT_MAX_CLOCK_SKEW_MS;

async function twins(): Promise<[string, string]> {
  const pair: [string, string] = [uid("clk-moved"), uid("clk-still")];
  for (const a of pair) {
    expect((await call("PUT", `/v1/accounts/${a}`, { name: "clock twin" })).status).toBe(201);
  }
  return pair;
}

const kinds = async (a: string) => (await ledgerEntries(a)).map((e) => e.kind);

describe("the account's clock decides, and only it", () => {
  it("expiry, hold and receipt deadlines: the moved twin expires and sweeps; the cron far ahead moves nothing on the other", async () => {
    const [moved, still] = await twins();
    for (const a of [moved, still]) {
      await grant(a, { grant_id: "g-short", amount: 100, expires_at: iso(Date.now() + 3_600_000) });
      await grant(a, { grant_id: "g-long", amount: 50 });
      const h = await call("POST", `/v1/accounts/${a}/holds`, { hold_id: "h-1", amount: 10, ttl_seconds: 600 });
      expect(h.status, h.text).toBe(201);
      const r = await call("POST", `/v1/accounts/${a}/receipts`, { receipt_id: "r-1", amount: 5, ttl_seconds: 600 });
      expect(r.status, r.text).toBe(201);
    }
    // Worked by hand: 150 granted, 10 held, 5 reserved by the receipt → 135 available.
    for (const a of [moved, still]) expect(await balance(a)).toMatchObject({ available: 135, held: 15 });

    await advanceClock(moved, 2 * 3_600_000);
    // The cron two days ahead of the Worker's clock: its jobs reach both accounts, neither by its own time.
    await runCron(Date.now() + 2 * DAY);
    for (const a of [moved, still]) await runAlarm(a);

    // moved: the hold and the receipt released (hold_on_expiry release, the default) and g-short's 100 expired.
    expect(await balance(moved)).toMatchObject({ available: 50, held: 0 });
    expect(await kinds(moved)).toEqual(expect.arrayContaining(["grant.expired"]));
    const hold = await call("GET", `/v1/accounts/${moved}/holds/h-1`);
    expect(hold.json).toMatchObject({ status: "released" });
    // still: nothing moved by the cron's time or the Worker's.
    expect(await balance(still)).toMatchObject({ available: 135, held: 15 });
    expect(await kinds(still)).not.toContain("grant.expired");
    expect((await call("GET", `/v1/accounts/${still}/holds/h-1`)).json).toMatchObject({ status: "open" });
    const cap = await call("POST", `/v1/accounts/${still}/holds/h-1/capture`, { amount: 10 });
    expect(cap.status, cap.text).toBe(200);
  });

  it("a recurring period starts by the account's clock: issued on the moved twin only", async () => {
    const [moved, still] = await twins();
    const startsAt = iso((await doNow(still)) + DAY);
    for (const a of [moved, still]) {
      const res = await call("POST", `/v1/accounts/${a}/recurring-grants`, {
        recurring_id: "allowance",
        amount: 1000,
        type: "promotional",
        interval: "month",
        starts_at: startsAt,
        expires: "never",
      });
      expect(res.status, res.text).toBe(201);
    }
    await advanceClock(moved, DAY + 60_000);
    await runCron(Date.now() + 3 * DAY);
    for (const a of [moved, still]) await runAlarm(a);
    expect((await balance(moved)).available).toBe(1000);
    expect((await balance(still)).available).toBe(0);
    expect(await kinds(still)).toEqual([]);
  });

  it("usage: MAX_CLOCK_SKEW_MS ahead of the account's clock is the bound, on either side, whatever the Worker's clock says", async () => {
    const [ahead, plain] = await twins();
    for (const a of [ahead, plain]) await grant(a, { amount: 100 });
    await advanceClock(ahead, 2 * 3_600_000);
    const margin = 30_000;
    const send = async (a: string, id: string, atMs: number) =>
      (
        await call("POST", "/v1/usage", {
          events: [{ event_id: id, account_id: a, amount: 1, occurred_at: iso(atMs) }],
        })
      ).json.results[0];
    for (const a of [ahead, plain]) {
      const now = await doNow(a);
      const entries = (await ledgerEntries(a)).length;
      expect(await send(a, "over", now + MAX_SKEW + margin)).toMatchObject({ status: 400, code: "clock_skew" });
      // A refused event moved nothing: same entries, same balance.
      expect((await ledgerEntries(a)).length).toBe(entries);
      expect((await balance(a)).available).toBe(100);
      expect(await send(a, "under", now + MAX_SKEW - margin)).toMatchObject({ status: 200 });
      expect((await balance(a)).available).toBe(99);
    }
    // Two hours ahead of the Worker is fine for the account whose clock is two hours ahead, and only for it.
    const twoHours = Date.now() + 2 * 3_600_000;
    expect(await send(ahead, "two-hours", twoHours)).toMatchObject({ status: 200 });
    expect(await send(plain, "two-hours", twoHours)).toMatchObject({ status: 400, code: "clock_skew" });
  });
});
