/**
 * Issue 7, defect 5: the alarm ships whatever the sweep does, and is armed
 * again whenever work remains, even when memory believes an alarm exists
 * that storage no longer has.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { AccountLedger } from "../../src/account/account-do";
import { ledgerDb } from "../../src/db/shards";
import { grant, ledgerStubFor, runAlarm, uid } from "./helpers";
import { failingD1 } from "./outbox-helpers";

async function d1Count(accountId: string): Promise<number> {
  const row = await ledgerDb(env, accountId)
    .prepare("SELECT count(*) AS n FROM ledger_entries WHERE account_id = ?")
    .bind(accountId)
    .first<{ n: number }>();
  return row?.n ?? 0;
}

/** The alarm storage holds, after letting queued checks run. */
async function storedAlarm(accountId: string): Promise<number | null> {
  return runInDurableObject(ledgerStubFor(accountId), async (_inst: AccountLedger, state) => {
    let at: number | null = null;
    // The keeper confirms asynchronously; a few turns are plenty, and the loop is bounded.
    for (let i = 0; i < 20 && at === null; i++) {
      await new Promise((r) => setTimeout(r, 0));
      at = await state.storage.getAlarm();
    }
    return at;
  });
}

describe("the alarm", () => {
  it("ships the outbox even when expiring and sweeping throw, and arms a retry", async () => {
    const a = uid();
    await grant(a, { amount: 10 });
    const stub = ledgerStubFor(a);
    await runInDurableObject(stub, (inst: AccountLedger) => {
      inst.expireAndSweep = () => {
        throw new Error("sweep exploded");
      };
    });
    expect(await d1Count(a)).toBe(0);
    await runAlarm(a);
    expect(await d1Count(a)).toBe(1);
    // The failed step is retried: an alarm is armed although the outbox is empty and nothing expires.
    expect(await storedAlarm(a)).not.toBeNull();
  });

  it("is set again when storage lost the alarm memory still believes in", async () => {
    const a = uid();
    await grant(a, { amount: 10 });
    const stub = ledgerStubFor(a);
    expect(await storedAlarm(a)).not.toBeNull();
    // What a handler the runtime gave up on leaves behind: no alarm, and a DO that thinks it has one.
    await runInDurableObject(stub, async (_inst: AccountLedger, state) => {
      await state.storage.deleteAlarm();
    });
    await grant(a, { amount: 5 });
    expect(await storedAlarm(a)).not.toBeNull();
    await runAlarm(a);
    expect(await d1Count(a)).toBe(2);
  });

  it("stays armed while D1 refuses the shipment, and ships once it is back", async () => {
    const a = uid();
    await grant(a, { amount: 10 });
    const stub = ledgerStubFor(a);
    await runInDurableObject(stub, (inst: AccountLedger) => {
      inst.shipVia = failingD1;
    });
    await runAlarm(a);
    expect(await d1Count(a)).toBe(0);
    expect(await storedAlarm(a)).not.toBeNull();
    await runInDurableObject(stub, (inst: AccountLedger) => {
      inst.shipVia = null;
    });
    await runAlarm(a);
    expect(await d1Count(a)).toBe(1);
  });
});
