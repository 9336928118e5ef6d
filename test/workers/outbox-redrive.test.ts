/**
 * Issue 7, defect 5c: the re-drive job finds every account with unshipped
 * rows, including one whose very first shipment never reached D1. A failed
 * shipment marks account_heads (known_seq = the DO's head, nothing claimed
 * shipped), so the lagging index lists the account; the scheduled job then
 * drains it. Driven through the real scheduled handler.
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { REDRIVE_BATCH } from "../../src/cron/redrive";
import { writeCronState } from "../../src/db/cron-state";
import { call, grant, ledgerEntries, ledgerStubFor, uid } from "./helpers";
import { runCron } from "./jobs-helpers";
import { d1Entries, failingD1, logLines, shipTo } from "./outbox-helpers";

const setCronState = (key: string, value: unknown) => writeCronState(env.DB, key, value).run();

/**
 * Leaves the next cron run's shipping to the re-drive alone: reconciliation
 * (which drains what it checks) reads no touched heads and no audit page, and
 * the re-drive's rolling probe starts at `probeCursor` ("~": past every account).
 */
async function onlyRedrive(probeCursor: string) {
  await setCronState("reconcile.watermark", { ms: Date.now() + 3_600_000, id: "" });
  await setCronState("reconcile.audit_cursor", "~");
  await setCronState("redrive.probe_cursor", probeCursor);
}

/** The re-drive job's log line from a cron run. */
const redriveLine = (spy: { mock: { calls: unknown[][] } }) =>
  logLines(spy, "cron.job").find((line) => line.job === "redrive") ?? null;

async function headOf(accountId: string) {
  return env.DB.prepare("SELECT shipped_seq, known_seq FROM account_heads WHERE account_id = ?")
    .bind(accountId)
    .first<{ shipped_seq: number; known_seq: number }>();
}

/**
 * A new account whose every shipment fails from the first: its D1 refuses
 * batches (single statements still pass, as when only large writes fail).
 * The alarm tries once; then D1 heals and the alarm is dropped, so only the
 * cron can ship what is waiting.
 */
async function neverShipped(write: (accountId: string) => Promise<unknown>) {
  const a = uid();
  await shipTo(a, failingD1);
  await write(a);
  await runDurableObjectAlarm(ledgerStubFor(a));
  await shipTo(a, (real) => real);
  return a;
}

describe("the re-drive finds every account with unshipped rows", () => {
  afterEach(() => vi.restoreAllMocks());

  it("an account whose first shipment never reached D1 is lagging in account_heads and drained by the cron", async () => {
    const a = await neverShipped((id) => grant(id, { amount: 10 }));
    expect(await d1Entries(a)).toEqual([]);
    // Keep the rolling probe away: the lagging index alone must find it.
    await onlyRedrive("~");
    await setCronState("redrive.lagging_cursor", "");
    const spy = vi.spyOn(console, "log");
    await runCron(Date.now());
    expect(redriveLine(spy)).toMatchObject({ ok: true, lagging: expect.any(Number), drained: expect.any(Number) });
    expect(Number(redriveLine(spy)?.drained)).toBeGreaterThanOrEqual(1);
    expect((await d1Entries(a)).map((e) => e.entry_id)).toEqual((await ledgerEntries(a)).map((e) => e.entry_id));
    expect(await headOf(a)).toEqual({ shipped_seq: 1, known_seq: 1 });
  });

  it("an account with only non-entry rows waiting is found by the rolling probe", async () => {
    const a = await neverShipped((id) => call("PUT", `/v1/accounts/${id}`, { name: "never shipped" }));
    expect(await env.DB.prepare("SELECT name FROM accounts WHERE account_id = ?").bind(a).first()).toBeNull();
    await onlyRedrive("");
    const spy = vi.spyOn(console, "log");
    await runCron(Date.now());
    expect(Number(redriveLine(spy)?.drained)).toBeGreaterThanOrEqual(1);
    expect(await env.DB.prepare("SELECT name FROM accounts WHERE account_id = ?").bind(a).first()).toEqual({
      name: "never shipped",
    });
  });

  it("accounts that stay stuck do not keep a lagging account out: the scan moves on each run", async () => {
    // REDRIVE_BATCH heads that stay lagging whatever is done (their DOs hold nothing), sorting before any uid.
    const stuck = Array.from({ length: REDRIVE_BATCH }, (_, i) => `!stuck-${uid()}-${i}`);
    await env.DB.batch(
      stuck.map((id) =>
        env.DB.prepare(
          `INSERT INTO account_heads (account_id, shipped_seq, head_hash, updated_at_ms, known_seq)
           VALUES (?, 0, ?, 0, 5)`,
        ).bind(id, "0".repeat(64)),
      ),
    );
    const a = await neverShipped((id) => grant(id, { amount: 10 }));
    await setCronState("redrive.lagging_cursor", "");
    let runs = 0;
    for (; runs < 3 && (await d1Entries(a)).length === 0; runs++) {
      await onlyRedrive("~");
      await runCron(Date.now());
    }
    expect((await d1Entries(a)).length).toBe(1);
    expect(runs).toBeLessThanOrEqual(2);
    await env.DB.batch(stuck.map((id) => env.DB.prepare("DELETE FROM account_heads WHERE account_id = ?").bind(id)));
  });
});
