/**
 * The scale model (scripts/lib/scale-model.mjs) on small cases worked out by
 * hand in the comments, and the simulation script run with small flags.
 */
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import {
  CODE,
  costPerMillion,
  cronCoverage,
  D1_ROWS,
  DO_ROWS,
  daysToObjectLimit,
  debitsPerShipment,
  doBytes,
  harmonic,
  hotAccountPlan,
  mulberry32,
  perDebitUsage,
  poisson,
  r2Month,
  sampleRanks,
  shardsNeeded,
  sumRows,
  tierState,
  type Usage,
  weightedQuantile,
  zipfShare,
} from "../../scripts/lib/scale-model.mjs";

describe("cost per million debits", () => {
  it("prices each line as quantity × the published unit price", () => {
    const usage: Usage = {
      workersRequests: 1,
      workersCpuMs: 5,
      doRequests: 2,
      doGbSeconds: 0.001,
      doRowsWritten: 21,
      doRowsRead: 4,
      d1RowsWritten: 15,
      d1RowsRead: 5,
      r2ClassA: 0,
      queuesOps: 0,
      aePoints: 1,
    };
    const cost = costPerMillion(usage);
    const usd = Object.fromEntries(cost.lines.map((l) => [l.item, l.usd]));
    // 10^6 requests × $0.30/M = 0.30; 5·10^6 CPU ms × $0.02/M = 0.10; 2·10^6 DO requests × $0.15/M = 0.30
    expect(usd["Workers requests"]).toBeCloseTo(0.3, 10);
    expect(usd["Workers CPU ms"]).toBeCloseTo(0.1, 10);
    expect(usd["DO requests"]).toBeCloseTo(0.3, 10);
    // 1 000 GB-s × $12.50/M = 0.0125; 21·10^6 rows × $1/M = 21; 4·10^6 rows read × $0.001/M = 0.004
    expect(usd["DO duration GB-s"]).toBeCloseTo(0.0125, 10);
    expect(usd["DO SQLite rows written"]).toBeCloseTo(21, 10);
    expect(usd["DO SQLite rows read"]).toBeCloseTo(0.004, 10);
    // D1: 15·10^6 written × $1/M = 15; 5·10^6 read × $0.001/M = 0.005; AE: 10^6 points × $0.25/M = 0.25
    expect(usd["D1 rows written"]).toBeCloseTo(15, 10);
    expect(usd["D1 rows read"]).toBeCloseTo(0.005, 10);
    expect(usd["Analytics Engine points"]).toBeCloseTo(0.25, 10);
    // 0.30 + 0.10 + 0.30 + 0.0125 + 21 + 0.004 + 15 + 0.005 + 0.25 = 36.9715
    expect(cost.usd).toBeCloseTo(36.9715, 10);
    // Two million cost twice as much.
    expect(costPerMillion(usage, undefined, 2).usd).toBeCloseTo(2 * 36.9715, 10);
  });

  it("counts a single-lot debit's rows from the code's write path", () => {
    // Object, per entry: entries 1+2, lot_marks 1+1, outbox in 2, outbox out 2, the window deletes the entry
    // 1+2 and its lot mark 1+1 = 14; per operation: lots 1, debits 1+1, idempotency 1+2, prune 1+2 = 9;
    // per shipment: setAlarm 1. Table rows only: 1+1+2+2+1+1 = 8 and 1+1+1+1 = 4.
    expect(sumRows(DO_ROWS.perEntry)).toBe(14);
    expect(sumRows(DO_ROWS.perOperation)).toBe(9);
    expect(sumRows(DO_ROWS.perEntry, false) + sumRows(DO_ROWS.perOperation, false)).toBe(12);
    // D1, per entry: ledger_entries 1+4, journal 1+4, archival delete 1+4 = 15; per shipment 1 + (1+1) = 3.
    expect(sumRows(D1_ROWS.perEntry)).toBe(15);
    expect(sumRows(D1_ROWS.perShipment)).toBe(3);

    const p = { cpuMsPerRequest: 5, doActiveMsPerCall: 1, shipWallMs: 30 };
    const quiet = perDebitUsage(1, p);
    // k = 1: every debit has its own alarm and shipment.
    expect(quiet.doRequests).toBe(2);
    expect(quiet.doRowsWritten).toBe(14 + 9 + 1);
    expect(quiet.d1RowsWritten).toBe(15 + 3);
    expect(quiet.doRowsRead).toBe(3 + 4);
    expect(quiet.d1RowsRead).toBe(1 + 1 + 3);
    // 0.125 GB × (1 ms + 30 ms) = 0.003875 GB-s
    expect(quiet.doGbSeconds).toBeCloseTo(0.003875, 12);
    const busy = perDebitUsage(25, p);
    // k = 25: the alarm, setAlarm and the per-shipment D1 rows are shared by 25 debits.
    expect(busy.doRequests).toBeCloseTo(1.04, 12);
    expect(busy.doRowsWritten).toBeCloseTo(23.04, 12);
    expect(busy.d1RowsWritten).toBeCloseTo(15.12, 12);
    // 0.125 × (1 + 30/25) / 1000 = 0.000275
    expect(busy.doGbSeconds).toBeCloseTo(0.000275, 12);
    const tableOnly = perDebitUsage(1, { ...p, countIndexRows: false });
    expect(tableOnly.doRowsWritten).toBe(8 + 4 + 1);
    expect(tableOnly.d1RowsWritten).toBe(3 + 2);
  });
});

describe("Zipf sampling", () => {
  it("H(3, 1) = 11/6 and rank 2 holds 3/11 of the activity", () => {
    expect(harmonic(3, 1)).toBeCloseTo(11 / 6, 12);
    expect(zipfShare(2, 1, 11 / 6)).toBeCloseTo(3 / 11, 12);
    // H(4, 2) = 1 + 1/4 + 1/9 + 1/16 = 205/144
    expect(harmonic(4, 2)).toBeCloseTo(205 / 144, 12);
  });

  it("the sample's weights add up to the accounts, and the shares to about 1", () => {
    const rng = mulberry32(7);
    const ranks = sampleRanks(100, 10, 45, rng);
    expect(ranks).toHaveLength(55);
    // 10 hot ranks of weight 1, 45 sampled ranks standing for 90/45 = 2 accounts each: 10 + 45 × 2 = 100.
    expect(ranks.reduce((t, r) => t + r.weight, 0)).toBeCloseTo(100, 10);
    expect(ranks.slice(0, 10).map((r) => r.rank)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    for (const r of ranks.slice(10)) expect(r.rank >= 11 && r.rank <= 100).toBe(true);

    // n = 1000, s = 1: the 100 hot ranks hold H(100)/H(1000) ≈ 5.1874/7.4855 ≈ 0.693 exactly; the sample
    // estimates the other ≈ 0.307, so Σ weight × share ≈ 1.
    const h = harmonic(1000, 1);
    const big = sampleRanks(1000, 100, 20_000, mulberry32(11));
    const hotPart = big.slice(0, 100).reduce((t, r) => t + zipfShare(r.rank, 1, h), 0);
    expect(hotPart).toBeCloseTo(harmonic(100, 1) / h, 12);
    const total = big.reduce((t, r) => t + r.weight * zipfShare(r.rank, 1, h), 0);
    expect(Math.abs(total - 1)).toBeLessThan(0.02);
  });

  it("the seeded generator repeats itself, and Poisson draws have the mean asked for", () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const first = [a(), a(), a()];
    expect([b(), b(), b()]).toEqual(first);
    for (const x of first) expect(x >= 0 && x < 1).toBe(true);
    const rng = mulberry32(3);
    for (const lambda of [0.5, 3, 100]) {
      let sum = 0;
      for (let i = 0; i < 20_000; i++) sum += poisson(lambda, rng);
      expect(Math.abs(sum / 20_000 - lambda)).toBeLessThan(0.05 * lambda + 0.02);
    }
    expect(poisson(0, rng)).toBe(0);
  });

  it("weighted quantiles follow the weights", () => {
    const items = [
      { value: 1, weight: 1 },
      { value: 2, weight: 1 },
      { value: 3, weight: 2 },
    ];
    // Weight 4 in all: value 1 reaches 25 %, value 2 reaches 50 %, value 3 reaches 100 %.
    expect(weightedQuantile(items, 0.25)).toBe(1);
    expect(weightedQuantile(items, 0.5)).toBe(2);
    expect(weightedQuantile(items, 0.75)).toBe(3);
  });
});

describe("one object", () => {
  it("a shipment carries 1 + rate × (delay + D1 time) debits, at most OUTBOX_BATCH / 2", () => {
    expect(debitsPerShipment(0, 30)).toBe(1);
    // 4 debits/s × (250 + 250) ms = 2 more: 3.
    expect(debitsPerShipment(4, 250)).toBe(3);
    expect(debitsPerShipment(1000, 30)).toBe(CODE.OUTBOX_BATCH / 2);
  });

  it("a hot account's plan: batches, receipts or children", () => {
    const plan = hotAccountPlan(2000, 500, { batch: 100, uses: 100, inObjectPerS: 1704 });
    // 2 000/s is over 500: not direct. Batches: 20 calls/s, but 2 000 events/s > 1 704 inside the object.
    expect(plan.direct).toBe(false);
    expect(plan.batchCalls).toBe(20);
    expect(plan.batchesSuffice).toBe(false);
    // Receipts: 2 calls per 100 uses = 40 calls/s. Children: 2 000 / min(500 × 100, 1 704) → 2.
    expect(plan.receiptCalls).toBe(40);
    expect(plan.receiptsSuffice).toBe(true);
    expect(plan.children).toBe(2);
    expect(hotAccountPlan(100, 500, { batch: 100, uses: 100, inObjectPerS: 1704 }).direct).toBe(true);
  });

  it("an object's bytes: the window, every debit record, 30 days of idempotency records", () => {
    // 20 000 debits at 100/day: window 10 000 × (349 + 70) = 4 190 000; records 20 000 × 111 = 2 220 000;
    // idempotency min(20 000, 100 × 30) × 371 = 1 113 000; Σ = 7 523 000.
    expect(doBytes({ totalDebits: 20_000, debitsPerDay: 100, indexFactor: 1 })).toBe(7_523_000);
    // 10^6 debits/day: the window fills in 0.01 day; until day 30 every debit keeps 111 + 371 bytes:
    // 4 190 000 + 4.82·10^8 × t = 10^10 → t = (10^10 − 4.19·10^6) / 4.82·10^8 ≈ 20.738 days.
    expect(daysToObjectLimit(1e6, 1e10, { indexFactor: 1 })).toBeCloseTo((1e10 - 4.19e6) / 4.82e8, 3);
    expect(daysToObjectLimit(0)).toBe(Number.POSITIVE_INFINITY);
  });
});

describe("tiers and cron", () => {
  it("shards needed for given bytes at a trigger", () => {
    expect(shardsNeeded(12e9, 5e9)).toBe(3);
    expect(shardsNeeded(10e9, 5e9)).toBe(2);
    expect(shardsNeeded(0, 5e9)).toBe(1);
  });

  it("where entries sit: D1 the last ARCHIVE_AFTER_DAYS days, R2 the rest, the journal all of them", () => {
    const t = tierState({
      entriesTotal: 1000,
      entriesPerDay: 10,
      archiveAfterDays: 90,
      accounts: 2,
      journalShare: 1,
      rollupRows: 10,
      triggerBytes: 5e9,
    });
    // 100 days of 10/day: D1 holds 900, R2 100. Shard: 900 × 552 + 2 heads × 168 = 497 136 bytes.
    expect(t.days).toBe(100);
    expect(t.d1Entries).toBe(900);
    expect(t.r2Entries).toBe(100);
    expect(t.shardBytes).toBe(497_136);
    expect(t.shards).toBe(1);
    // Journal 1 000 × 314; rollups 10 × 219; R2 100 × 611.
    expect(t.journalBytes).toBe(314_000);
    expect(t.rollupBytes).toBe(2190);
    expect(t.r2Bytes).toBe(61_100);
    // 64 shards × 5 GB / (552 B × 90 days) ≈ 6.44·10^6 entries/day fit.
    expect(t.fitsEntriesPerDay).toBeCloseTo((64 * 5e9) / (552 * 90), 6);
  });

  it("R2 objects per month: a segment per account-month and per 10 000 entries, a manifest per shard", () => {
    const m = r2Month(
      [
        { entries: 25_000, weight: 2 },
        { entries: 1, weight: 10 },
        { entries: 0, weight: 5 },
      ],
      3,
    );
    // 2 accounts × 3 segments + 10 × 1 = 16 segments, + 3 manifests = 19 PUTs; (50 000 + 10) × 611 bytes.
    expect(m.segments).toBe(16);
    expect(m.classA).toBe(19);
    expect(m.bytes).toBe(30_556_110);
  });

  it("cron coverage: per run × 288 runs a day against demand", () => {
    const rows = cronCoverage({ reconcile: 115_200 });
    const r = rows.find((x) => x.job === "reconcile");
    // 200 per run × 288 = 57 600 a day; demand twice that: behind. One consumer with 6 calls of 50 ms in
    // flight does 120 calls/s ≥ 115 200 / 86 400 = 1.33/s.
    expect(r?.perDay).toBe(57_600);
    expect(r?.ratio).toBe(2);
    expect(r?.behind).toBe(true);
    expect(r?.consumers).toBe(1);
    expect(rows.find((x) => x.job === "transfers")?.behind).toBe(false);
  });
});

describe("scripts/simulate.mjs", () => {
  const run = (args: string[]) =>
    spawnSync(process.execPath, ["scripts/simulate.mjs", ...args], { encoding: "utf8", timeout: 60_000 });
  const small = ["--accounts", "10000", "--sample", "2000", "--hot", "50", "--debits-per-day", "100000", "--seed", "7"];

  it("prints a table and one parsable SIMULATION_JSON line, the same for the same seed", () => {
    const out = run(small);
    expect(out.status).toBe(0);
    const lines = out.stdout.trim().split("\n");
    const json = lines.filter((l) => l.startsWith("SIMULATION_JSON "));
    expect(json).toHaveLength(1);
    expect(lines.length).toBeGreaterThan(5);
    const result = JSON.parse((json[0] as string).slice("SIMULATION_JSON ".length));
    expect(result.sampled_accounts).toBe(2050);
    // Poisson days around Zipf rates that add up to 10^5.
    expect(Math.abs(result.load.debits_per_day - 100_000)).toBeLessThan(15_000);
    expect(result.cost_per_million_debits.mix).toBeGreaterThan(0);
    const sum = result.cost_per_million_debits.mix_lines.reduce((t: number, l: { usd: number }) => t + l.usd, 0);
    expect(Math.abs(sum - result.cost_per_million_debits.mix)).toBeLessThan(0.02);
    const again = JSON.parse((run(small).stdout.match(/SIMULATION_JSON (.*)/)?.[1] ?? "{}") as string);
    expect({ ...again, elapsed_s: 0 }).toEqual({ ...result, elapsed_s: 0 });
    const other = JSON.parse(
      (run([...small.slice(0, -1), "8"]).stdout.match(/SIMULATION_JSON (.*)/)?.[1] ?? "{}") as string,
    );
    expect(other.load.debits_per_day).not.toBe(result.load.debits_per_day);
  });

  it("refuses an unknown flag or a bad value", () => {
    expect(run(["--nope", "1"]).status).not.toBe(0);
    expect(run(["--accounts", "-5"]).status).not.toBe(0);
  });
});
