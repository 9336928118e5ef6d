/**
 * POST /v1/usage through the real Worker: one result per event in order,
 * duplicates within and across batches, events and debits as one operation,
 * unknown and short accounts, clock skew against the account's own clock,
 * back-dated events, velocity, and balances moved by exactly the 200s.
 */
import { describe, expect, it } from "vitest";
import { advanceClock, balance, call, debit, expectProblem, grant, iso, ledgerEntries, uid } from "./helpers";

const usage = (events: unknown[]) => call("POST", "/v1/usage", { events });
const codes = (results: any[]) => results.map((r) => [r.event_id, r.status, r.code ?? null]);

async function account(credits: number): Promise<string> {
  const a = uid("use");
  await grant(a, { grant_id: `${a}-g`, amount: credits });
  return a;
}

describe("POST /v1/usage", () => {
  it("answers each event in order and moves balances by exactly the applied events", async () => {
    const a = await account(100);
    const b = await account(10);
    const unknown = uid("nobody");
    const longAgo = Date.now() - 2 * 86_400_000;
    const e = (id: string) => `${a}-${id}`;
    const res = await usage([
      { event_id: e("1"), account_id: a, amount: 30 },
      { event_id: e("1"), account_id: a, amount: 30 }, // the same event again: replayed, moves nothing
      { event_id: e("2"), account_id: b, amount: 15 }, // b has 10
      { event_id: e("3"), account_id: unknown, amount: 5 },
      { event_id: e("4"), account_id: a, amount: 5, occurred_at: iso(Date.now() + 10 * 60_000) },
      { event_id: e("5"), account_id: a, amount: 0 },
      { event_id: e("6"), account_id: a, amount: 10, occurred_at: iso(longAgo) },
      { event_id: e("7"), account_id: "not an id!", amount: 1 },
      { event_id: e("8"), account_id: b, amount: 10 },
      { event_id: e("1"), account_id: a, amount: 31 }, // same id, other body
      { account_id: a, amount: 1 },
      { event_id: e("9"), account_id: a, amount: 1, color: "red" },
      7,
      { event_id: e("10"), account_id: a, amount: 2, unit: "tokens" }, // a holds no tokens
      { event_id: e("11"), account_id: a, amount: 1, meter: "m", quantity: 3 },
      { event_id: e("12"), account_id: a, amount: 4, occurred_at: iso(Date.now() + 60_000) }, // within 5 min
      { event_id: e("13"), account_id: unknown, amount: 1, occurred_at: iso(Date.now() + 3_600_000) }, // unknown first
    ]);
    expect(res.status, res.text).toBe(200);
    expect(codes(res.json.results)).toEqual([
      [e("1"), 200, null],
      [e("1"), 200, null],
      [e("2"), 402, "insufficient_credits"],
      [e("3"), 404, "account_not_found"],
      [e("4"), 400, "clock_skew"],
      [e("5"), 400, "invalid_amount"],
      [e("6"), 200, null],
      [e("7"), 400, "invalid_request"],
      [e("8"), 200, null],
      [e("1"), 409, "idempotency_conflict"],
      [null, 400, "invalid_request"],
      [e("9"), 400, "invalid_request"],
      [null, 400, "invalid_request"],
      [e("10"), 402, "insufficient_credits"],
      [e("11"), 400, "invalid_request"],
      [e("12"), 200, null],
      [e("13"), 404, "account_not_found"],
    ]);
    const [first, again, short] = res.json.results;
    expect(first).toMatchObject({ amount: 30, unit: "credits", applied: [{ grant_id: `${a}-g`, amount: 30 }] });
    expect(first.replayed).toBeUndefined();
    expect(again).toMatchObject({ amount: 30, replayed: true, applied: first.applied });
    expect(short).toMatchObject({ available: 10, requested: 15 });
    // a: 100 − 30 − 10 − 4; b: 10 − 10.
    expect((await balance(a)).available).toBe(56);
    expect((await balance(b)).available).toBe(0);
    expect((await call("GET", `/v1/accounts/${unknown}`)).status).toBe(404);
    // The back-dated event's entry carries its own time; it was recorded now.
    const entries = await ledgerEntries(a);
    const dated = entries.find((x) => x.ref === e("6"));
    expect(dated.effective_at).toBe(iso(longAgo));
    expect(Date.parse(dated.recorded_at)).toBeGreaterThan(longAgo + 86_400_000);
    expect(entries.filter((x) => x.kind === "debit").map((x) => [x.ref, x.amount])).toEqual([
      [e("1"), -30],
      [e("6"), -10],
      [e("12"), -4],
    ]);
  });

  it("a later batch replays what was applied, and an event and a debit with the same id are one operation", async () => {
    const a = await account(100);
    const first = await usage([
      { event_id: "ev-1", account_id: a, amount: 20 },
      { event_id: "ev-2", account_id: a, amount: 5, occurred_at: iso(Date.now() - 60_000) },
    ]);
    expect(codes(first.json.results)).toEqual([
      ["ev-1", 200, null],
      ["ev-2", 200, null],
    ]);
    const again = await usage([
      { event_id: "ev-1", account_id: a, amount: 20 },
      { event_id: "ev-3", account_id: a, amount: 1 },
    ]);
    expect(again.json.results.map((r: any) => [r.event_id, r.status, r.replayed ?? false])).toEqual([
      ["ev-1", 200, true],
      ["ev-3", 200, false],
    ]);
    // The debit route sees the event as its own first debit: same body, replayed.
    const asDebit = await call("POST", `/v1/accounts/${a}/debits`, { debit_id: "ev-1", amount: 20 });
    expect(asDebit.status).toBe(200);
    expect(asDebit.headers.get("idempotent-replayed")).toBe("true");
    expect(asDebit.json.applied).toEqual(first.json.results[0].applied);
    // An event's own time is part of its body: a debit with the id but without it is another body.
    const other = await call("POST", `/v1/accounts/${a}/debits`, { debit_id: "ev-2", amount: 5 });
    expectProblem(other, 409, "idempotency_conflict");
    // And a debit first, then an event with its id and body: replayed.
    expect((await debit(a, 7, { debit_id: "d-7" })).status).toBe(200);
    const late = await usage([{ event_id: "d-7", account_id: a, amount: 7 }]);
    expect(late.json.results[0]).toMatchObject({ event_id: "d-7", status: 200, replayed: true, amount: 7 });
    // 100 − 20 − 5 − 1 − 7.
    expect((await balance(a)).available).toBe(67);
  });

  it("judges occurred_at against the account's own clock", async () => {
    const a = await account(100);
    const b = await account(100);
    await advanceClock(a, 3_600_000); // a's clock is an hour ahead
    const inHalfAnHour = iso(Date.now() + 30 * 60_000);
    const res = await usage([
      { event_id: "skew-a", account_id: a, amount: 1, occurred_at: inHalfAnHour },
      { event_id: "skew-b", account_id: b, amount: 1, occurred_at: inHalfAnHour },
    ]);
    expect(codes(res.json.results)).toEqual([
      ["skew-a", 200, null],
      ["skew-b", 400, "clock_skew"],
    ]);
    expect(res.json.results[1].detail).toMatch(/300000 ms ahead/);
    expect((await balance(b)).available).toBe(100);
  });

  it("counts events against velocity limits: 429 for the event that would pass one, others go on", async () => {
    const a = uid("use");
    await call("PUT", `/v1/accounts/${a}`, { velocity: { credits: { per_day: 10 } } });
    await grant(a, { amount: 100 });
    const res = await usage([
      { event_id: "v1", account_id: a, amount: 6 },
      { event_id: "v2", account_id: a, amount: 5 },
      { event_id: "v3", account_id: a, amount: 4 },
      { event_id: "v4", account_id: a, amount: 1, occurred_at: iso(Date.now() - 3 * 86_400_000) },
    ]);
    expect(codes(res.json.results)).toEqual([
      ["v1", 200, null],
      ["v2", 429, "velocity_limit"],
      ["v3", 200, null],
      ["v4", 429, "velocity_limit"], // counted at the account's clock: back-dating does not escape the window
    ]);
    expect(res.json.results[1]).toMatchObject({
      window: "per_day",
      used: 6,
      requested: 5,
      retry_after: expect.any(Number),
    });
    expect((await balance(a)).available).toBe(90);
  });

  it("takes 1 000 events on one account in one call, in order, each applied once", async () => {
    const a = await account(1_000_000);
    const events = Array.from({ length: 1000 }, (_, i) => ({ event_id: `e${i}`, account_id: a, amount: i + 1 }));
    const started = Date.now();
    const res = await usage(events);
    const tookMs = Date.now() - started;
    expect(res.status).toBe(200);
    expect(res.json.results).toHaveLength(1000);
    expect(res.json.results.every((r: any, i: number) => r.event_id === `e${i}` && r.status === 200)).toBe(true);
    // Σ 1..1000 = 500 500.
    expect((await balance(a)).available).toBe(1_000_000 - 500_500);
    console.log(JSON.stringify({ usage_batch_1000_ms: tookMs }));
  });
});
