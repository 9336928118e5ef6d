/**
 * Issue 14: `as_of` equals a replay for random histories, before and after
 * compaction. Random grants (types, units, effective and expiry windows),
 * debits, holds with captures and releases, voids and clock moves run on the
 * real Durable Object, checkpoints taken every 3 entries; then for random
 * times T the balance and the grants as of T are compared with a pure replay
 * (src/ledger/replay.ts replayLots) of ALL entries, read through the API's
 * ledger pages. Then the window shrinks to 5 entries, the object compacts,
 * and the same reads must answer the same, and the ledger pages too.
 */
import { runInDurableObject } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { AccountLedger } from "../../src/account/account-do";
import type { AccountCore } from "../../src/account/core";
import { balanceJson } from "../../src/account/views";
import { grantView, type Lot, replayLots } from "../../src/ledger";
import { advanceClock, call, iso, ledgerStubFor, runAlarm, uid } from "./helpers";
import { compactAll, doNow, exportAll, noCompaction, type Settings, settle, storageCounts } from "./window-helpers";

const TYPES = ["promotional", "compensatory", "purchased"] as const;
const UNITS = ["credits", "tokens"] as const;
const EVERY = 3;
const TINY: Settings = { window: 5, checkpointEvery: EVERY };

type Cmd =
  | {
      op: "grant";
      amount: number;
      type: (typeof TYPES)[number];
      unit: string;
      startMin: number;
      lifeMin: number | null;
    }
  | { op: "debit"; amount: number; unit: string }
  | { op: "hold"; amount: number; unit: string }
  | { op: "close"; index: number; capture: number | null }
  | { op: "void"; index: number }
  | { op: "advance"; seconds: number };

const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  fc.record({
    op: fc.constant("grant" as const),
    amount: fc.integer({ min: 1, max: 500 }),
    type: fc.constantFrom(...TYPES),
    unit: fc.constantFrom(...UNITS),
    startMin: fc.integer({ min: -5, max: 3 }),
    lifeMin: fc.option(fc.integer({ min: 6, max: 20 }), { nil: null }),
  }),
  fc.record({
    op: fc.constant("debit" as const),
    amount: fc.integer({ min: 1, max: 300 }),
    unit: fc.constantFrom(...UNITS),
  }),
  fc.record({
    op: fc.constant("hold" as const),
    amount: fc.integer({ min: 1, max: 200 }),
    unit: fc.constantFrom(...UNITS),
  }),
  fc.record({
    op: fc.constant("close" as const),
    index: fc.nat(),
    capture: fc.option(fc.nat({ max: 200 }), { nil: null }),
  }),
  fc.record({ op: fc.constant("void" as const), index: fc.nat() }),
  fc.record({ op: fc.constant("advance" as const), seconds: fc.integer({ min: 1, max: 400 }) }),
);

interface Issued {
  grants: string[];
  holds: { id: string; amount: number }[];
}

async function run(a: string, c: Cmd, issued: Issued): Promise<void> {
  const base = `/v1/accounts/${a}`;
  switch (c.op) {
    case "grant": {
      const start = (await doNow(a)) + c.startMin * 60_000;
      const id = uid("g");
      const res = await call("POST", `${base}/grants`, {
        grant_id: id,
        amount: c.amount,
        type: c.type,
        unit: c.unit,
        reason: "as_of property",
        effective_at: iso(start),
        expires_at: c.lifeMin === null ? null : iso(start + c.lifeMin * 60_000),
      });
      expect(res.status).toBe(201);
      issued.grants.push(id);
      return;
    }
    case "debit":
    case "hold": {
      const id = uid(c.op);
      const extra = c.op === "hold" ? { ttl_seconds: 300 } : {};
      const path = c.op === "debit" ? "debits" : "holds";
      const res = await call("POST", `${base}/${path}`, {
        [`${c.op}_id`]: id,
        amount: c.amount,
        unit: c.unit,
        ...extra,
      });
      expect([200, 201, 402]).toContain(res.status);
      if (c.op === "hold" && res.status === 201) issued.holds.push({ id, amount: c.amount });
      return;
    }
    case "close": {
      const h = issued.holds[c.index % Math.max(1, issued.holds.length)];
      if (!h) return;
      const action = c.capture === null ? "release" : "capture";
      const body = c.capture === null ? undefined : { amount: Math.min(c.capture, h.amount) };
      expect([200, 409]).toContain((await call("POST", `${base}/holds/${h.id}/${action}`, body)).status);
      return;
    }
    case "void": {
      const g = issued.grants[c.index % Math.max(1, issued.grants.length)];
      if (!g) return;
      expect([200, 409]).toContain((await call("POST", `${base}/grants/${g}/void`, { reason: "prop" })).status);
      return;
    }
    case "advance":
      await advanceClock(a, c.seconds * 1000);
      return;
  }
}

/** The lots' terms (type, unit, windows, created and voided times) as the object holds them. */
async function terms(a: string): Promise<Lot[]> {
  return runInDurableObject(ledgerStubFor(a), (inst: AccountLedger) => [
    ...(inst as unknown as { core: AccountCore }).core.lots.values(),
  ]);
}

/** What a pure replay of every entry says the balance and the grants were at each time. */
function replayed(a: string, lots: Lot[], entries: any[], t: number) {
  const replay = entries.map((e) => ({
    grantId: e.grant_id,
    amount: e.amount,
    heldDelta: e.held_delta,
    recordedAtMs: Date.parse(e.recorded_at),
  }));
  const states = replayLots(lots, replay, t);
  const balances = UNITS.map((unit) =>
    balanceJson(
      a,
      unit,
      t,
      states.filter((l) => l.unit === unit),
      [],
      1000,
    ),
  );
  return { balances, grants: states.map((l) => grantView(l, t)) };
}

async function served(a: string, t: number) {
  const balances: unknown[] = [];
  for (const unit of UNITS) {
    const res = await call("GET", `/v1/accounts/${a}/balance?unit=${unit}&as_of=${iso(t)}`);
    expect(res.status).toBe(200);
    balances.push(res.json);
  }
  const res = await call("GET", `/v1/accounts/${a}/grants?as_of=${iso(t)}&limit=1000`);
  expect(res.status).toBe(200);
  return { balances, grants: res.json.grants };
}

describe("as_of against a replay of every entry", () => {
  it("balance and grants as_of T equal a pure replay, before and after compaction", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(cmd, { minLength: 6, maxLength: 18 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 3, maxLength: 5 }),
        async (cmds, picks) => {
          const a = uid("asof");
          const issued: Issued = { grants: [], holds: [] };
          const times: number[] = [];
          const first: Cmd = {
            op: "grant",
            amount: 400,
            type: "purchased",
            unit: "credits",
            startMin: 0,
            lifeMin: null,
          };
          for (const c of [first, ...cmds]) {
            times.push(await doNow(a));
            await run(a, c, issued);
            await settle(a, noCompaction(EVERY));
          }
          times.push(await doNow(a));
          // Expiries and sweeps due by now are written first, so no job appends an entry between the reads.
          await runAlarm(a);
          await settle(a, noCompaction(EVERY));
          const before = await exportAll(a, 4);
          // Random times in the history and the recorded_at of random entries, each also 1 ms before (an
          // entry recorded exactly at T counts), the start and the end (inside the window once compacted).
          const span = times[times.length - 1]! - times[0]!;
          // p is in [0, 1]: p = 1 picks the last entry.
          const at = (p: number) =>
            Date.parse(
              before.entries[Math.min(before.entries.length - 1, Math.floor(p * before.entries.length))].recorded_at,
            );
          const ts = [times[0]! - 1, times[times.length - 1]!];
          for (const p of picks) ts.push(times[0]! + Math.floor(p * span), at(p));
          for (const t of [...ts]) ts.push(t - 1);
          const lots = await terms(a);
          const answers: unknown[] = [];
          for (const t of ts) {
            const got = await served(a, t);
            expect(got).toEqual(replayed(a, lots, before.entries, t));
            answers.push(got);
          }

          const compacted = await compactAll(a, TINY);
          const counts = await storageCounts(a);
          if (before.entries.length > TINY.window + 2 * EVERY + 4) expect(counts.floor).toBeGreaterThan(0);
          expect(counts.entries).toBe(compacted.held);
          expect(await exportAll(a, 4)).toEqual(before);
          for (const [i, t] of ts.entries()) expect(await served(a, t)).toEqual(answers[i]);
        },
      ),
      { numRuns: 20, endOnFailure: true },
    );
  }, 120_000);
});
