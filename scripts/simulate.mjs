#!/usr/bin/env node
/**
 * `npm run simulate -- [--flag value …]`: the load profile of docs/scale.md.
 * Accounts' activity follows Zipf(s) by rank; the busiest `--hot` ranks are
 * simulated one by one and `--sample` ranks drawn (seeded) from the rest,
 * each standing for its share of the remaining accounts. Each simulated
 * account draws its day (Poisson), splits it into direct debits, usage events
 * and receipt uses, and gets its object calls, peak rate, entries,
 * shipments, stored bytes and cron touches; sums scale by the weights.
 * Prints a table and one `SIMULATION_JSON {...}` line. Pure arithmetic:
 * everything it models is in scripts/lib/scale-model.mjs.
 */
import {
  CODE,
  costPerMillion,
  cronCoverage,
  daysToObjectLimit,
  debitsPerShipment,
  doBytes,
  harmonic,
  hotAccountPlan,
  LIMITS,
  MEASURED,
  mulberry32,
  PRICES,
  perDebitUsage,
  poisson,
  r2Month,
  sampleRanks,
  scaleUsage,
  storageUsdPerMonth,
  tierState,
  usageOf,
  weightedQuantile,
  zipfShare,
} from "./lib/scale-model.mjs";

const DEFAULTS = {
  accounts: 1e7,
  sample: 200_000,
  hot: 2000,
  zipf: 1.1,
  "debits-per-day": 1e8,
  "peak-factor": 4,
  "usage-share": 0.3,
  "batch-size": 100,
  "receipt-share": 0.2,
  "receipt-uses": 100,
  "grant-every-days": 30,
  "alerts-per-debit": 0.001,
  "recurring-share": 0.1,
  "accounts-per-usage-request": 10,
  "cap-rps": LIMITS.doSoftRps * 0.5,
  "entries-total": 1e10,
  "archive-days": CODE.ARCHIVE_AFTER_DAYS,
  "trigger-gb": 5,
  "ship-ms": 30,
  "do-active-ms": 1,
  "call-ms": 50,
  seed: 1,
};

function parseFlags(argv) {
  const o = { ...DEFAULTS };
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i]?.replace(/^--/, "");
    if (!name || !(name in DEFAULTS)) throw new Error(`unknown flag ${argv[i]} (flags: ${Object.keys(DEFAULTS)})`);
    const v = Number(argv[++i]);
    if (!Number.isFinite(v) || v < 0) throw new Error(`--${name} needs a non-negative number`);
    o[name] = v;
  }
  o.accounts = Math.floor(o.accounts);
  o.sample = Math.floor(o.sample);
  o.hot = Math.floor(o.hot);
  return o;
}

const started = Date.now();
const o = parseFlags(process.argv.slice(2));
const rng = mulberry32(o.seed);
const h = harmonic(o.accounts, o.zipf);
const ranks = sampleRanks(o.accounts, o.hot, o.sample, rng);
const cost = { doActiveMsPerCall: o["do-active-ms"], shipWallMs: o["ship-ms"] };
const directShare = Math.max(0, 1 - o["usage-share"] - o["receipt-share"]);
// Measured server CPU per admitted debit on each path (BENCHMARKS.md): upper bounds for production.
const CPU = { direct: MEASURED.workerCpuMsPerDebit, usageEvent: 0.34, receiptUse: 0.1749 };

const day = { requests: 0, cpuMs: 0, doCalls: 0, operations: 0, entries: 0, shipments: 0, r2Puts: 0 };
let debits = 0;
let activeAccounts = 0;
let touches = 0;
const peaks = [];
const activePeaks = [];
const hot = { overCapDirect: 0, overCapAfterMix: 0, needBatchesOrReceipts: 0, needChildren: 0, maxChildren: 0 };
const accountMonths = [];
let doStoreBytes = 0;
let overObjectLimit = 0;
let top = null;

for (const { rank, weight } of ranks) {
  const lambda = o["debits-per-day"] * zipfShare(rank, o.zipf, h);
  const n = poisson(lambda, rng);
  const grants = rng() < 1 / o["grant-every-days"] ? 1 : 0;
  // The month this account's segment covers, drawn on its own (an account idle today may not be all month).
  accountMonths.push({ entries: poisson(30 * (lambda + 2 / o["grant-every-days"]), rng), weight });
  if (n === 0 && grants === 0) {
    peaks.push({ value: 0, weight });
    continue;
  }
  const direct = Math.round(n * directShare);
  const usage = Math.round(n * o["usage-share"]);
  const uses = n - direct - usage;
  const batches = usage > 0 ? Math.ceil(usage / o["batch-size"]) : 0;
  const receipts = uses > 0 ? Math.ceil(uses / o["receipt-uses"]) : 0;
  const calls = direct + batches + 2 * receipts + grants;
  // Entries: one per debit or event, a receipt's hold, settle and release, a grant and (later) its expiry.
  const entries = direct + usage + 2.5 * receipts + 2 * grants;
  const operations = direct + usage + 2 * receipts + 2 * grants;
  const k = debitsPerShipment(entries / 86_400, o["ship-ms"]);
  const peak = (calls / 86_400) * o["peak-factor"];
  const peakAllDirect = (n / 86_400) * o["peak-factor"];
  peaks.push({ value: peak, weight });
  activePeaks.push({ value: peak, weight });
  const plan = hotAccountPlan(peakAllDirect, o["cap-rps"], {
    batch: o["batch-size"],
    uses: o["receipt-uses"],
    inObjectPerS: MEASURED.doInObjectDebitsPerS * 0.5,
  });
  if (!plan.direct) {
    hot.overCapDirect += weight;
    hot.needBatchesOrReceipts += weight;
    if (peak > o["cap-rps"]) hot.overCapAfterMix += weight;
    if (!plan.batchesSuffice && !plan.receiptsSuffice) hot.needChildren += weight;
    hot.maxChildren = Math.max(hot.maxChildren, plan.children);
  }
  activeAccounts += weight;
  debits += weight * n;
  day.requests += weight * (direct + 2 * receipts + grants + batches / o["accounts-per-usage-request"]);
  day.cpuMs += weight * (direct * CPU.direct + usage * CPU.usageEvent + uses * CPU.receiptUse + grants * CPU.direct);
  day.doCalls += weight * calls;
  day.operations += weight * operations;
  day.entries += weight * entries;
  day.shipments += weight * (entries / k);
  // Touched in a 5-minute cron window: 1 − e^(−entries per window).
  touches += weight * CODE.CRON_RUNS_PER_DAY * (1 - Math.exp(-entries / CODE.CRON_RUNS_PER_DAY));
  if (rank === 1) top = { rank, debitsPerDay: n, peakAllDirect, peak, k, plan };
}

const daysToTotal = o["entries-total"] / day.entries;
for (const { rank, weight } of ranks) {
  const perDay = o["debits-per-day"] * zipfShare(rank, o.zipf, h);
  doStoreBytes += weight * doBytes({ totalDebits: perDay * daysToTotal, debitsPerDay: perDay });
  if (daysToObjectLimit(perDay) < daysToTotal) overObjectLimit += weight;
}

const triggerBytes = o["trigger-gb"] * 1e9;
const tiers = tierState({
  entriesTotal: o["entries-total"],
  entriesPerDay: day.entries,
  archiveAfterDays: o["archive-days"],
  accounts: o.accounts,
  journalShare: 0.95,
  rollupRows: activeAccounts * daysToTotal * 1.5,
  triggerBytes,
});
const r2 = r2Month(accountMonths, Math.min(tiers.shards, CODE.LEDGER_SHARDS_MAX));
day.r2Puts = r2.classA / 30;
day.queueMessages = debits * o["alerts-per-debit"];

const usageDay = usageOf(day, cost);
const mix = costPerMillion(scaleUsage(usageDay, debits));
const base = { cpuMsPerRequest: CPU.direct, ...cost };
const quiet = costPerMillion(perDebitUsage(1, base));
const busy = costPerMillion(perDebitUsage(25, base));
const cron = cronCoverage(
  {
    // Structural demand only; expirations, sweeps, transfers and redrive.lagging are backstops of the
    // objects' alarms and see work only when an alarm did not run (docs/scale.md, "Cron fan-out").
    recurring: (o.accounts * o["recurring-share"] * 2) / 30,
    "redrive.probe": o.accounts,
    reconcile: touches,
    "reconcile.audit": o.accounts,
    expiring: (o.accounts / o["grant-every-days"]) * 2,
    spikes: touches,
    "archive.probe": o.accounts,
    "archive.segments": r2.segments / 30,
  },
  o["call-ms"],
);
const storageMonth = {
  do: storageUsdPerMonth(doStoreBytes, PRICES.doStoragePerGbMonth),
  d1: storageUsdPerMonth(tiers.shardBytes + tiers.primaryBytes, PRICES.d1StoragePerGbMonth),
  r2: storageUsdPerMonth(tiers.r2Bytes, PRICES.r2StoragePerGbMonth),
};

const round = (x, d = 2) => (Number.isFinite(x) ? Number(x.toFixed(d)) : x);
const result = {
  flags: o,
  sampled_accounts: ranks.length,
  sampling: `${Math.min(o.hot, o.accounts)} busiest ranks exactly + ${o.sample} uniform ranks of the rest, weight ${round((o.accounts - Math.min(o.hot, o.accounts)) / Math.max(1, o.sample), 1)} each`,
  load: {
    debits_per_day: Math.round(debits),
    active_accounts_per_day: Math.round(activeAccounts),
    entries_per_day: Math.round(day.entries),
    object_calls_per_day: Math.round(day.doCalls),
    shipments_per_day: Math.round(day.shipments),
    days_to_entries_total: round(daysToTotal, 1),
  },
  per_object_peak_calls_per_s: {
    p50_active: round(weightedQuantile(activePeaks, 0.5), 6),
    p99_active: round(weightedQuantile(activePeaks, 0.99), 4),
    p50: round(weightedQuantile(peaks, 0.5), 6),
    p99: round(weightedQuantile(peaks, 0.99), 4),
    p9999: round(weightedQuantile(peaks, 0.9999), 2),
    max: round(
      peaks.reduce((m, p) => Math.max(m, p.value), 0),
      1,
    ),
    cap_rps: o["cap-rps"],
  },
  hot_accounts: {
    over_cap_if_all_direct: Math.round(hot.overCapDirect),
    over_cap_with_mix: Math.round(hot.overCapAfterMix),
    need_children: Math.round(hot.needChildren),
    max_children: hot.maxChildren,
    top,
    over_object_storage_limit_by_entries_total: Math.round(overObjectLimit),
    top_days_to_10gb: round(daysToObjectLimit(top?.debitsPerDay ?? 0), 1),
  },
  tiers: {
    d1_entries: tiers.d1Entries,
    d1_shard_bytes: Math.round(tiers.shardBytes),
    shards_needed_at_trigger: tiers.shards,
    shards_over_max: tiers.shardsOverMax,
    entries_per_day_that_fit_64_shards: Math.round(tiers.fitsEntriesPerDay),
    retention_days_that_fit_64_shards: round(tiers.retentionDaysThatFit, 1),
    primary_journal_bytes: Math.round(tiers.journalBytes),
    primary_rollup_bytes: Math.round(tiers.rollupBytes),
    primary_over_10gb: tiers.primaryOverLimit,
    r2_entries: tiers.r2Entries,
    r2_bytes: Math.round(tiers.r2Bytes),
    r2_objects_per_month: Math.round(r2.classA),
    r2_bytes_per_month: Math.round(r2.bytes),
    do_bytes_total: Math.round(doStoreBytes),
  },
  cron: cron.map((c) => ({
    job: c.job,
    per_run: c.perRun,
    per_day: c.perDay,
    demand_per_day: Math.round(c.demand),
    ratio: round(c.ratio, 2),
    queue_consumers: c.consumers,
  })),
  cost_per_million_debits: {
    mix: round(mix.usd, 2),
    mix_lines: mix.lines.map((l) => ({ item: l.item, quantity: round(l.quantity, 1), usd: round(l.usd, 3) })),
    direct_quiet_k1: round(quiet.usd, 2),
    direct_busy_k25: round(busy.usd, 2),
  },
  storage_usd_per_month_at_entries_total: {
    do: round(storageMonth.do),
    d1: round(storageMonth.d1),
    r2: round(storageMonth.r2),
  },
  elapsed_s: round((Date.now() - started) / 1000, 2),
};

const fmt = (x) =>
  typeof x === "number" ? (Math.abs(x) >= 1e6 ? x.toExponential(3) : String(round(x, 3))) : String(x);
const rows = [
  ["accounts (sampled)", `${fmt(o.accounts)} (${ranks.length})`],
  [
    "debits/day, active accounts/day",
    `${fmt(result.load.debits_per_day)}, ${fmt(result.load.active_accounts_per_day)}`,
  ],
  ["entries/day, days to 10^10", `${fmt(result.load.entries_per_day)}, ${result.load.days_to_entries_total}`],
  [
    "peak calls/s per object p50/p99/max",
    `${fmt(result.per_object_peak_calls_per_s.p50)} / ${fmt(result.per_object_peak_calls_per_s.p99)} / ${fmt(result.per_object_peak_calls_per_s.max)}`,
  ],
  [
    "  same, active accounts p50/p99",
    `${fmt(result.per_object_peak_calls_per_s.p50_active)} / ${fmt(result.per_object_peak_calls_per_s.p99_active)}`,
  ],
  [
    "accounts over cap: all-direct / with mix",
    `${result.hot_accounts.over_cap_if_all_direct} / ${result.hot_accounts.over_cap_with_mix}`,
  ],
  ["objects over 10 GB by then", `${result.hot_accounts.over_object_storage_limit_by_entries_total}`],
  ["D1 shard bytes, shards at trigger", `${fmt(result.tiers.d1_shard_bytes)}, ${tiers.shards}`],
  ["primary journal bytes", fmt(result.tiers.primary_journal_bytes)],
  ["R2 bytes, objects/month", `${fmt(result.tiers.r2_bytes)}, ${fmt(result.tiers.r2_objects_per_month)}`],
  [
    "cost / 1M debits: mix, quiet, busy",
    `$${result.cost_per_million_debits.mix}, $${result.cost_per_million_debits.direct_quiet_k1}, $${result.cost_per_million_debits.direct_busy_k25}`,
  ],
];
for (const c of result.cron)
  rows.push([`cron ${c.job} per day / demand`, `${fmt(c.per_day)} / ${fmt(c.demand_per_day)}`]);
const width = Math.max(...rows.map((r) => r[0].length));
for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
console.log(`SIMULATION_JSON ${JSON.stringify(result)}`);
