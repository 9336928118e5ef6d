/**
 * The scale model behind docs/scale.md: pure functions (no I/O, no clock) that
 * turn a load profile into per-object rates, storage per tier, cron coverage
 * and cost. scripts/simulate.mjs samples the profile and calls these;
 * test/unit/scale-model.test.ts checks each one on small cases worked by hand.
 *
 * Each figure is PRICES / LIMITS (Cloudflare's published figures, read
 * 2026-12-01, sources in docs/scale.md), MEASURED (this build: BENCHMARKS.md
 * or the SQLite measurement docs/scale.md describes) or CODE (a constant of
 * the code, named as it is there).
 */

/** USD, marginal (above the Workers Paid plan's included usage). */
export const PRICES = {
  workersRequestsPerM: 0.3, // developers.cloudflare.com/workers/platform/pricing/
  workersCpuPerMs: 0.02 / 1e6, // ibid.: $0.02 per million CPU ms
  doRequestsPerM: 0.15, // developers.cloudflare.com/durable-objects/platform/pricing
  doGbSecondsPerM: 12.5, // ibid.
  doRowsReadPerM: 0.001, // SQLite storage billing, as restated by third parties (see docs/scale.md)
  doRowsWrittenPerM: 1.0, // ibid.
  doStoragePerGbMonth: 0.2, // ibid.
  d1RowsReadPerM: 0.001, // developers.cloudflare.com/d1/platform/pricing/
  d1RowsWrittenPerM: 1.0, // ibid.
  d1StoragePerGbMonth: 0.75, // ibid.
  r2StoragePerGbMonth: 0.015, // cloudflare-docs src/content/docs/r2/pricing.mdx
  r2ClassAPerM: 4.5, // ibid.
  r2ClassBPerM: 0.36, // ibid.
  queuesOpsPerM: 0.4, // developers.cloudflare.com/queues/pricing/
  aePointsPerM: 0.25, // developers.cloudflare.com/analytics/analytics-engine/pricing
};

export const LIMITS = {
  doStorageBytes: 10e9, // SQLite-backed DO: 10 GB per object (DO limits page)
  doSoftRps: 1000, // "soft limit of 1,000 requests per second" per object (DO FAQ)
  doMemoryGb: 0.125, // duration bills 128 MB per object (DO pricing footnote 5), as 128/1024 GB
  d1MaxDbBytes: 10e9, // D1: 10 GB per database (Workers Paid)
  d1Databases: 50_000, // per account, raisable
  d1QueriesPerInvocation: 1000,
  workerBindingsMax: 5000, // "approximately 5,000" D1 bindings per Worker script
  queuesMsgsPerS: 5000, // per queue
  queuesConsumers: 250, // concurrent push consumers
  queuesBatchMax: 100,
};

export const MEASURED = {
  /** D1 shard: ledger_entries row + its 4 indexes, per debit-shaped entry (SQLite dbstat, migrations 0000–0014). */
  d1ShardBytesPerEntry: 552,
  /** D1 primary: journal row + its indexes, per entry that moves credits. */
  d1JournalBytesPerRow: 314,
  /** D1 primary: journal_daily row + indexes, per (day, account, unit, category, type, source…) group. */
  d1RollupBytesPerRow: 219,
  /** D1: account_heads row + indexes, per account. */
  d1HeadBytesPerAccount: 168,
  /** D1 shard: archive_segments row + indexes, per R2 segment. */
  d1SegmentBytesPerRow: 636,
  /** R2: one entry as an NDJSON line (canonical JSON of a served debit entry + "\n"), uncompressed. */
  r2BytesPerEntry: 611,
  /** BENCHMARKS.md ledger_parts: one whole debit inside the object (µs) and whole debits per second. */
  doInObjectDebitUs: 293.4,
  doInObjectDebitsPerS: 3408,
  /** BENCHMARKS.md debit_hot, workerd's share of server CPU per debit (Worker + object + local D1): an upper bound. */
  workerCpuMsPerDebit: 5.106,
  /** BENCHMARKS.md storage: column bytes per debit that stay in the object (outbox rows leave once shipped). */
  doColumnBytes: { entries: 349, lotMarks: 70, debits: 111, idempotency: 371 },
};

export const CODE = {
  OUTBOX_BATCH: 50, // src/account/outbox.ts: rows per shipment
  OUTBOX_DELAY_MS: 250, // ibid.
  OUTBOX_ROWS_PER_DEBIT: 2, // one entry row + one journal row (src/account/storage.ts writeChange)
  IDEMPOTENCY_RETENTION_DAYS: 30, // src/account/jobs.ts
  MAX_USAGE_EVENTS: 1000, // src/account/usage.ts
  LEDGER_SHARDS_MAX: 64, // src/db/shards.ts
  ARCHIVE_AFTER_DAYS: 90, // wrangler.toml var
  DO_WINDOW_ENTRIES: 10_000, // tier 1: recent entries kept in the object (issue 14)
  CHECKPOINT_EVERY: 1000,
  SEGMENT_MAX_ENTRIES: 10_000, // R2 segment per account and month
  CRON_RUNS_PER_DAY: 288, // wrangler.toml "*/5 * * * *"
  PARALLEL: 6, // src/cron/job.ts
};

/** Each cron job's per-run bound (src/cron/*.ts) and what one unit of it is. */
export const CRON_JOBS = [
  { job: "recurring", perRun: 500, unit: "schedules", constant: "RECURRING_CRON_BATCH" },
  { job: "expirations", perRun: 50, unit: "accounts", constant: "EXPIRY_BATCH" },
  { job: "sweeps", perRun: 50, unit: "accounts", constant: "SWEEP_BATCH" },
  { job: "transfers", perRun: 50, unit: "claims", constant: "TRANSFER_SWEEP_BATCH" },
  { job: "redrive.lagging", perRun: 50, unit: "accounts", constant: "REDRIVE_BATCH" },
  { job: "redrive.probe", perRun: 25, unit: "accounts", constant: "PROBE_BATCH" },
  { job: "reconcile", perRun: 200, unit: "touched accounts", constant: "RECONCILE_BATCH" },
  { job: "reconcile.audit", perRun: 20, unit: "accounts", constant: "AUDIT_BATCH" },
  { job: "expiring", perRun: 200, unit: "lots", constant: "EXPIRING_BATCH" },
  { job: "spikes", perRun: 200, unit: "touched accounts", constant: "SPIKE_BATCH" },
  { job: "dispatch", perRun: 200, unit: "alerts", constant: "DISPATCH_BATCH" },
  { job: "archive.probe", perRun: 500, unit: "accounts", constant: "ARCHIVE_PROBE_ACCOUNTS" },
  { job: "archive.segments", perRun: 20, unit: "segments", constant: "ARCHIVE_SEGMENTS_PER_RUN" },
];

export { mulberry32 } from "./prng.mjs";

/** H(n, s) = Σ_{i=1..n} i^-s, summed exactly (n ≤ 10^8 is a loop of n steps). */
export function harmonic(n, s) {
  let h = 0;
  // Smallest terms first, so the sum loses no precision to the large ones.
  for (let i = n; i >= 1; i--) h += i ** -s;
  return h;
}

/** Share of all activity that the account of rank `rank` (1 = busiest) has under Zipf(s) over n accounts. */
export function zipfShare(rank, s, h) {
  return rank ** -s / h;
}

/**
 * Which accounts the simulation looks at: the `hot` busiest ranks each
 * exactly (weight 1), and `sample` ranks drawn uniformly from the rest, each
 * standing for (n − hot) / sample accounts. Σ weight = n.
 */
export function sampleRanks(n, hot, sample, rng) {
  const top = Math.min(hot, n);
  const out = [];
  for (let r = 1; r <= top; r++) out.push({ rank: r, weight: 1 });
  const rest = n - top;
  if (rest > 0 && sample > 0) {
    const weight = rest / sample;
    for (let i = 0; i < sample; i++) out.push({ rank: top + 1 + Math.floor(rng() * rest), weight });
  }
  return out;
}

/** A Poisson draw: Knuth's product below λ = 30, a rounded normal above it. */
export function poisson(lambda, rng) {
  if (lambda <= 0) return 0;
  if (lambda < 30) {
    const limit = Math.exp(-lambda);
    let k = 0;
    let p = rng();
    while (p > limit) {
      k++;
      p *= rng();
    }
    return k;
  }
  const u = Math.max(rng(), 1e-12);
  const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
  return Math.max(0, Math.round(lambda + Math.sqrt(lambda) * z));
}

/** The value below which a share q of the total weight lies (values with their weights). */
export function weightedQuantile(items, q) {
  const sorted = [...items].sort((a, b) => a.value - b.value);
  const total = sorted.reduce((t, x) => t + x.weight, 0);
  let seen = 0;
  for (const x of sorted) {
    seen += x.weight;
    if (seen >= q * total) return x.value;
  }
  return sorted.length > 0 ? sorted[sorted.length - 1].value : 0;
}

/**
 * Debits one outbox shipment carries on an account doing `ratePerS`: the
 * alarm fires OUTBOX_DELAY_MS after the first unshipped write, and what
 * arrives meanwhile and while D1 answers rides along, up to OUTBOX_BATCH rows.
 * E[k] = 1 + rate × (delay + ship) for Poisson arrivals, capped.
 */
export function debitsPerShipment(ratePerS, shipMs, delayMs = CODE.OUTBOX_DELAY_MS) {
  const cap = CODE.OUTBOX_BATCH / CODE.OUTBOX_ROWS_PER_DEBIT;
  return Math.min(cap, 1 + (ratePerS * (delayMs + shipMs)) / 1000);
}

/**
 * SQLite rows an object writes (src/account/storage.ts writeChange, outbox.ts,
 * jobs.ts), split by what they follow: each entry, each operation (a debit, a
 * usage event, a receipt's issue or settle: its own records), each shipment.
 * `table` rows plus the `index` rows SQLite writes with them.
 */
export const DO_ROWS = {
  perEntry: [
    { what: "entries insert (+ entry_id unique, entries_by_ref)", table: 1, index: 2 },
    { what: "lot_marks insert (+ lot_marks_by_grant)", table: 1, index: 1 },
    { what: "outbox inserts: the entry and its journal row", table: 2, index: 0 },
    { what: "outbox deletes once D1 has them", table: 2, index: 0 },
    { what: "window: the entry leaves the object (src/account/window.ts)", table: 1, index: 2 },
    { what: "window: its lot mark leaves with it", table: 1, index: 1 },
  ],
  perOperation: [
    { what: "lots upsert (remaining, held)", table: 1, index: 0 },
    { what: "debits insert (+ debit_id key)", table: 1, index: 1 },
    { what: "idempotency insert (+ key, idempotency_by_age)", table: 1, index: 2 },
    { what: "idempotency prune after IDEMPOTENCY_RETENTION_MS", table: 1, index: 2 },
  ],
  perShipment: [{ what: "setAlarm (billed as one row written)", table: 1, index: 0 }],
};

/** D1 rows (src/account/outbox-rows.ts and the archival move), per entry and per shipment. */
export const D1_ROWS = {
  perEntry: [
    { what: "ledger_entries insert (+ 4 indexes), account's shard", table: 1, index: 4 },
    { what: "journal insert (+ 4 indexes), primary", table: 1, index: 4 },
    { what: "ledger_entries delete at archival (+ 4 indexes), shard", table: 1, index: 4 },
  ],
  perShipment: [
    { what: "journal_daily upsert of the day's group, primary", table: 1, index: 0 },
    { what: "account_heads upsert (+ account_heads_touched)", table: 1, index: 1 },
  ],
};

/** Σ rows of one list; index rows too unless `withIndexes` is false. */
export const sumRows = (rows, withIndexes = true) =>
  rows.reduce((t, r) => t + r.table + (withIndexes ? r.index : 0), 0);

/**
 * What a day (or any period) of work bills, from its counts: HTTP requests
 * and their CPU, object calls, operations, entries, shipments (one alarm each).
 * `p`: doActiveMsPerCall and shipWallMs (wall time the object is billed for),
 * countIndexRows (default true).
 */
export function usageOf(c, p) {
  const idx = p.countIndexRows !== false;
  return {
    workersRequests: c.requests,
    workersCpuMs: c.cpuMs,
    doRequests: c.doCalls + c.shipments,
    doGbSeconds: LIMITS.doMemoryGb * ((c.doCalls * p.doActiveMsPerCall + c.shipments * p.shipWallMs) / 1000),
    doRowsWritten:
      c.entries * sumRows(DO_ROWS.perEntry, idx) +
      c.operations * sumRows(DO_ROWS.perOperation, idx) +
      c.shipments * sumRows(DO_ROWS.perShipment, idx),
    // Per operation: idempotency probe, debit-id probe, head; per shipment: the outbox page and its count.
    doRowsRead: c.operations * 3 + c.shipments * 4,
    d1RowsWritten: c.entries * sumRows(D1_ROWS.perEntry, idx) + c.shipments * sumRows(D1_ROWS.perShipment, idx),
    // The global policy per request and per alarm; per entry the rollup's journal probe, the archive
    // trigger's probe and reconciliation's one re-read.
    d1RowsRead: c.requests + c.shipments + c.entries * 3,
    r2ClassA: c.r2Puts ?? 0,
    queuesOps: (c.queueMessages ?? 0) * 3,
    aePoints: c.operations, // src/metrics/analytics.ts: one point per commit's (kind, unit) group
  };
}

/** The base case: one single-lot debit per request, on an account whose shipments carry `k` debits. */
export function perDebitUsage(k, p) {
  return usageOf({ requests: 1, cpuMs: p.cpuMsPerRequest, doCalls: 1, operations: 1, entries: 1, shipments: 1 / k }, p);
}

/** Cost of `millions` million debits at `prices`, itemised; every line = quantity × unit price. */
export function costPerMillion(usage, prices = PRICES, millions = 1) {
  const m = millions * 1e6;
  const lines = [
    ["Workers requests", usage.workersRequests * m, prices.workersRequestsPerM / 1e6],
    ["Workers CPU ms", usage.workersCpuMs * m, prices.workersCpuPerMs],
    ["DO requests", usage.doRequests * m, prices.doRequestsPerM / 1e6],
    ["DO duration GB-s", usage.doGbSeconds * m, prices.doGbSecondsPerM / 1e6],
    ["DO SQLite rows written", usage.doRowsWritten * m, prices.doRowsWrittenPerM / 1e6],
    ["DO SQLite rows read", usage.doRowsRead * m, prices.doRowsReadPerM / 1e6],
    ["D1 rows written", usage.d1RowsWritten * m, prices.d1RowsWrittenPerM / 1e6],
    ["D1 rows read", usage.d1RowsRead * m, prices.d1RowsReadPerM / 1e6],
    ["R2 Class A", usage.r2ClassA * m, prices.r2ClassAPerM / 1e6],
    ["Queues operations", usage.queuesOps * m, prices.queuesOpsPerM / 1e6],
    ["Analytics Engine points", usage.aePoints * m, prices.aePointsPerM / 1e6],
  ].map(([item, quantity, unitPrice]) => ({ item, quantity, usd: quantity * unitPrice }));
  return { lines, usd: lines.reduce((t, l) => t + l.usd, 0) };
}

/** Per-unit quantities: every member of `usage` divided by `n`. */
export const scaleUsage = (usage, n) => Object.fromEntries(Object.entries(usage).map(([k, v]) => [k, v / n]));

/** Storage cost per month of `bytes` at `pricePerGbMonth` (1 GB = 10^9 bytes, as Cloudflare bills). */
export const storageUsdPerMonth = (bytes, pricePerGbMonth) => (bytes / 1e9) * pricePerGbMonth;

/**
 * What one account at `ratePerS` debits needs so that its object stays under
 * `capRps` calls per second (the soft limit × a utilisation target): usage
 * batches of `batch` events make rate / batch calls but still do each event's
 * work inside the object (≤ inObjectPerS); receipts of `uses` uses make two
 * calls each (issue, settle); sub-accounts split the rate over children.
 */
export function hotAccountPlan(ratePerS, capRps, { batch, uses, inObjectPerS }) {
  const direct = ratePerS <= capRps;
  const batchCalls = ratePerS / batch;
  const batchesSuffice = batchCalls <= capRps && ratePerS <= inObjectPerS;
  const receiptCalls = (2 * ratePerS) / uses;
  const receiptsSuffice = receiptCalls <= capRps;
  // Children that each carry ≤ capRps debits per request (or ≤ inObjectPerS through batches).
  const children = Math.ceil(ratePerS / Math.min(capRps * batch, inObjectPerS));
  return { direct, batchCalls, batchesSuffice, receiptCalls, receiptsSuffice, children: direct ? 1 : children };
}

/**
 * Bytes an object holds for an account: the window of recent entries, every
 * debit record kept forever (never charge twice past the idempotency
 * retention), idempotency records for the retention, lot marks.
 */
export function doBytes({ totalDebits, debitsPerDay, bytes = MEASURED.doColumnBytes, indexFactor = 1.3 }) {
  const window = Math.min(totalDebits, CODE.DO_WINDOW_ENTRIES);
  const idem = Math.min(totalDebits, debitsPerDay * CODE.IDEMPOTENCY_RETENTION_DAYS);
  const column = window * (bytes.entries + bytes.lotMarks) + totalDebits * bytes.debits + idem * bytes.idempotency;
  return column * indexFactor;
}

/** Days until one object reaches `limitBytes` at `debitsPerDay` (the debit records are what keep growing). */
export function daysToObjectLimit(debitsPerDay, limitBytes = LIMITS.doStorageBytes, o = {}) {
  const over = (days) => doBytes({ ...o, totalDebits: days * debitsPerDay, debitsPerDay }) >= limitBytes;
  if (debitsPerDay <= 0 || !over(1e7)) return Number.POSITIVE_INFINITY;
  let lo = 0;
  let hi = 1e7;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (over(mid)) hi = mid;
    else lo = mid;
  }
  return lo;
}

/** Databases needed to hold `bytes` when each is split off at `triggerBytes`. */
export function shardsNeeded(bytes, triggerBytes) {
  if (bytes <= 0) return 1;
  return Math.ceil(bytes / triggerBytes);
}

/**
 * Where `entriesTotal` entries sit after steady operation at `entriesPerDay`:
 * D1 holds the last ARCHIVE_AFTER_DAYS days (every entry is shipped, so the
 * object's window is a copy), R2 everything older; the journal (primary) one
 * row per credit-moving entry, never archived today.
 */
export function tierState(o) {
  const days = o.entriesPerDay > 0 ? o.entriesTotal / o.entriesPerDay : 0;
  const d1Entries = Math.min(o.entriesTotal, o.entriesPerDay * o.archiveAfterDays);
  const r2Entries = o.entriesTotal - d1Entries;
  const shardBytes = d1Entries * MEASURED.d1ShardBytesPerEntry + o.accounts * MEASURED.d1HeadBytesPerAccount;
  const journalBytes = o.entriesTotal * o.journalShare * MEASURED.d1JournalBytesPerRow;
  const rollupBytes = o.rollupRows * MEASURED.d1RollupBytesPerRow;
  const shards = shardsNeeded(shardBytes, o.triggerBytes);
  const fitsEntriesPerDay =
    (CODE.LEDGER_SHARDS_MAX * o.triggerBytes) / (MEASURED.d1ShardBytesPerEntry * o.archiveAfterDays);
  return {
    days,
    d1Entries,
    r2Entries,
    shardBytes,
    shards,
    bytesPerShard: shardBytes / Math.max(1, Math.min(shards, CODE.LEDGER_SHARDS_MAX)),
    shardsOverMax: shards > CODE.LEDGER_SHARDS_MAX,
    fitsEntriesPerDay,
    retentionDaysThatFit:
      (CODE.LEDGER_SHARDS_MAX * o.triggerBytes) / (MEASURED.d1ShardBytesPerEntry * Math.max(1, o.entriesPerDay)),
    journalBytes,
    rollupBytes,
    primaryBytes: journalBytes + rollupBytes,
    primaryOverLimit: journalBytes + rollupBytes > LIMITS.d1MaxDbBytes,
    r2Bytes: r2Entries * MEASURED.r2BytesPerEntry,
  };
}

/**
 * R2 per month: one segment per (account, month) with entries, plus one per
 * further SEGMENT_MAX_ENTRIES; one manifest per (shard, month).
 */
export function r2Month(accountMonths, shards) {
  let segments = 0;
  let bytes = 0;
  for (const { entries, weight } of accountMonths) {
    segments += weight * Math.ceil(Math.max(0, entries) / CODE.SEGMENT_MAX_ENTRIES);
    bytes += weight * Math.max(0, entries) * MEASURED.r2BytesPerEntry;
  }
  return { segments, manifests: shards, classA: segments + shards, bytes };
}

/**
 * Each cron job's capacity per day against its demand per day, and, were a
 * Queue to take the job over, the consumers it needs: each consumer keeps
 * PARALLEL object calls of `callMs` in flight.
 */
export function cronCoverage(demandPerDay, callMs = 50) {
  return CRON_JOBS.map((j) => {
    const perDay = j.perRun * CODE.CRON_RUNS_PER_DAY;
    const demand = demandPerDay[j.job] ?? 0;
    return {
      ...j,
      perDay,
      perSecond: perDay / 86_400,
      demand,
      ratio: demand / perDay,
      behind: demand > perDay,
      consumers: Math.ceil(demand / 86_400 / (CODE.PARALLEL * (1000 / callMs))),
    };
  });
}
