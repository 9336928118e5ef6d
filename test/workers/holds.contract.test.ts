/**
 * Closing holds and settling receipts: the same close answers the same,
 * however its body was spelled; a capture of 0 is a capture; a hold past its
 * deadline is closed by policy before anything else touches it, whether or
 * not the alarm has run.
 */
import { describe, expect, it } from "vitest";
import { advanceClock, balance, call, grant, ledgerEntries, uid } from "./helpers";

async function openHold(a: string, amount: number, ttl = 300) {
  const res = await call("POST", `/v1/accounts/${a}/holds`, { hold_id: "h", amount, ttl_seconds: ttl });
  expect(res.status).toBe(201);
}

describe("closing a hold is idempotent by meaning", () => {
  it("release with no body, then with {}: the first result, nothing moved", async () => {
    const a = uid();
    await grant(a, { amount: 50 });
    await openHold(a, 20);
    const first = await call("POST", `/v1/accounts/${a}/holds/h/release`);
    expect(first.status).toBe(200);
    const entries = await ledgerEntries(a);
    const again = await call("POST", `/v1/accounts/${a}/holds/h/release`, {});
    expect(again.status).toBe(200);
    expect(again.text).toBe(first.text);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(await ledgerEntries(a)).toEqual(entries);
  });

  it("capture with no body equals capture of the whole held amount; another amount is refused", async () => {
    const a = uid();
    await grant(a, { amount: 50 });
    await openHold(a, 20);
    const first = await call("POST", `/v1/accounts/${a}/holds/h/capture`);
    expect(first.json).toMatchObject({ status: "captured", captured: 20, released: 0 });
    const same = await call("POST", `/v1/accounts/${a}/holds/h/capture`, { amount: 20 });
    expect(same.text).toBe(first.text);
    const other = await call("POST", `/v1/accounts/${a}/holds/h/capture`, { amount: 5 });
    expect(other.status).toBe(409);
    expect((await call("POST", `/v1/accounts/${a}/holds/h/release`)).json.code).toBe("hold_closed");
    expect(await balance(a)).toMatchObject({ available: 30, held: 0 });
  });

  it("a capture of 0 is a capture: status captured, and release is then the other close", async () => {
    const a = uid();
    await grant(a, { amount: 50 });
    await openHold(a, 20);
    const zero = await call("POST", `/v1/accounts/${a}/holds/h/capture`, { amount: 0 });
    expect(zero.status).toBe(200);
    expect(zero.json).toMatchObject({ status: "captured", captured: 0, released: 20 });
    const release = await call("POST", `/v1/accounts/${a}/holds/h/release`);
    expect(release.status).toBe(409);
    expect(release.json.code).toBe("hold_closed");
    expect(await balance(a)).toMatchObject({ available: 50, held: 0 });
  });
});

describe("deadlines hold whether or not the alarm ran", () => {
  it("a capture after the deadline finds the hold released by policy (release)", async () => {
    const a = uid();
    await grant(a, { amount: 50 });
    await openHold(a, 10, 1);
    await advanceClock(a, 5_000);
    const capture = await call("POST", `/v1/accounts/${a}/holds/h/capture`);
    expect(capture.status).toBe(409);
    expect(capture.json.code).toBe("hold_closed");
    const entries = await ledgerEntries(a);
    expect(entries.at(-1)).toMatchObject({ kind: "hold.released", held_delta: -10, actor: "system:sweep" });
    const release = await call("POST", `/v1/accounts/${a}/holds/h/release`);
    expect(release.status).toBe(200);
    expect(release.json).toMatchObject({ status: "released", released: 10 });
    expect(await ledgerEntries(a)).toEqual(entries);
  });

  it("a debit after a hold's deadline can spend what the hold released", async () => {
    const a = uid();
    await grant(a, { amount: 50 });
    await openHold(a, 40, 1);
    expect((await call("POST", `/v1/accounts/${a}/debits`, { debit_id: "d0", amount: 20 })).status).toBe(402);
    await advanceClock(a, 2_000);
    const debit = await call("POST", `/v1/accounts/${a}/debits`, { debit_id: "d1", amount: 20 });
    expect(debit.status).toBe(200);
    expect(debit.json.balance).toMatchObject({ available: 30, held: 0 });
  });
});
