/**
 * For random histories (grants with and without expiry, debits, holds
 * captured or released, voids, time passing, expiry runs, and compaction of
 * the object's window into D1), a replay now and as of random past times
 * matches the live account, and rebuilds exactly the entries the export
 * says were recorded by then.
 */
import { runInDurableObject } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { AccountLedger } from "../../src/account/account-do";
import { advanceClock, call, grant, iso, ledgerStubFor, runAlarm, uid } from "./helpers";
import { expireNow, exportAll, replay } from "./replay-helpers";

type Cmd =
  | { op: "grant"; amount: number; promo: boolean; expiresInMs: number | null }
  | { op: "debit"; amount: number }
  | { op: "hold"; amount: number; close: "capture" | "release"; part: number }
  | { op: "void"; pick: number }
  | { op: "wait"; ms: number }
  | { op: "compact" };

const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  fc.record({
    op: fc.constant("grant" as const),
    amount: fc.integer({ min: 1, max: 500 }),
    promo: fc.boolean(),
    expiresInMs: fc.option(fc.integer({ min: 500, max: 4_000 }), { nil: null }),
  }),
  fc.record({ op: fc.constant("debit" as const), amount: fc.integer({ min: 1, max: 300 }) }),
  fc.record({
    op: fc.constant("hold" as const),
    amount: fc.integer({ min: 1, max: 300 }),
    close: fc.constantFrom("capture" as const, "release" as const),
    part: fc.integer({ min: 0, max: 100 }),
  }),
  fc.record({ op: fc.constant("void" as const), pick: fc.nat() }),
  fc.record({ op: fc.constant("wait" as const), ms: fc.integer({ min: 1, max: 3_000 }) }),
  fc.record({ op: fc.constant("compact" as const) }),
);

async function apply(a: string, c: Cmd, grants: string[]): Promise<void> {
  switch (c.op) {
    case "grant": {
      const id = uid("g");
      const nowMs = await runInDurableObject(ledgerStubFor(a), (i: AccountLedger) => Date.now() + i.clock.offsetMs);
      await grant(a, {
        grant_id: id,
        amount: c.amount,
        type: c.promo ? "promotional" : "purchased",
        ...(c.expiresInMs === null ? {} : { expires_at: iso(nowMs + c.expiresInMs) }),
      });
      grants.push(id);
      return;
    }
    case "debit":
      // Refusals (402) are part of a random history: they write nothing.
      await call("POST", `/v1/accounts/${a}/debits`, { debit_id: uid("d"), amount: c.amount });
      return;
    case "hold": {
      const h = uid("h");
      const res = await call("POST", `/v1/accounts/${a}/holds`, { hold_id: h, amount: c.amount, ttl_seconds: 600 });
      if (res.status !== 201) return;
      const body = c.close === "capture" ? { amount: Math.floor((c.amount * c.part) / 100) } : undefined;
      await call("POST", `/v1/accounts/${a}/holds/${h}/${c.close}`, body);
      return;
    }
    case "void": {
      const id = grants[c.pick % Math.max(1, grants.length)];
      if (id) await call("POST", `/v1/accounts/${a}/grants/${id}/void`, {});
      return;
    }
    case "wait":
      await advanceClock(a, c.ms);
      await expireNow(a);
      return;
    case "compact":
      await runAlarm(a);
      await runInDurableObject(ledgerStubFor(a), (i: AccountLedger) => i.compactNow({ window: 2, checkpointEvery: 2 }));
  }
}

describe("replay property", () => {
  it("replay as of T matches the live account for random histories", async () => {
    let compacted = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(cmd, { minLength: 3, maxLength: 14 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 3 }),
        async (cmds, fractions) => {
          const a = uid("rprop");
          const grants: string[] = [];
          await grant(a, { grant_id: "seed", amount: 200 });
          grants.push("seed");
          for (const c of cmds) await apply(a, c, grants);
          // Every other history ends with enough entries past a checkpoint to move the floor, so each run of
          // the property replays across the window, whatever the random commands did to the balance.
          if (cmds.length % 2 === 0) {
            await grant(a, { grant_id: uid("tail"), amount: 10 });
            // A checkpoint every two debits (compact takes one at the head), then the floor moves past them.
            for (let i = 0; i < 8; i++) {
              await call("POST", `/v1/accounts/${a}/debits`, { debit_id: uid("d"), amount: 1 });
              if (i % 2 === 1) await apply(a, { op: "compact" }, grants);
            }
          }
          const floor = await runInDurableObject(ledgerStubFor(a), (_i: AccountLedger, state) =>
            Number(state.storage.sql.exec("SELECT seq FROM window_floor").one().seq),
          );
          if (floor > 0) compacted++;
          if (cmds.length % 2 === 0) expect(floor, "the tail moved the window floor").toBeGreaterThan(0);
          const entries = await exportAll(a);
          const now = await replay(a);
          expect(now.json).toMatchObject({ matches: true, diff: [], replayed_entries: entries.length });
          const first = Date.parse(entries[0].recorded_at);
          const last = Date.parse(entries[entries.length - 1].recorded_at);
          for (const f of fractions) {
            const t = Math.floor(first - 1 + f * (last - first + 1));
            const by = entries.filter((e) => Date.parse(e.recorded_at) <= t);
            const res = await replay(a, { as_of: iso(t) });
            expect(res.json, iso(t)).toMatchObject({
              matches: true,
              diff: [],
              replayed_entries: by.length,
              head_seq: by.at(-1)?.seq ?? 0,
            });
          }
        },
      ),
      { numRuns: 15 },
    );
    // Histories had entries leave the object (a replay across the window floor), not only short ones.
    expect(compacted).toBeGreaterThan(0);
  });
});
