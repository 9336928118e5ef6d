#!/usr/bin/env node
/**
 * `node scripts/measure-reports.mjs`: how long each finance report takes over
 * a seeded journal, on a real local `wrangler dev` (fresh temp state).
 *
 * Seeds N accounts (default 1 000) × R journal rows (default 100) straight
 * into local D1 (`journal` and the `journal_daily` rollups the outbox would
 * maintain), spread over the last 365 days, ten parents of N/10 children
 * each; then times every report, JSON and CSV, with and without filters,
 * RUNS times each (default 5), and prints the median and the worst.
 * Nothing is asserted: these are numbers for docs/api.md, not a test.
 *
 * Env: N, R, RUNS; KEEP=1 keeps the temp dir (its D1 SQLite file) for EXPLAIN QUERY PLAN. Prints a table and one line `MEASURE_JSON {...}`.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { getTableColumns } from "drizzle-orm";
import { register } from "tsx/esm/api";
import { runWrangler, startLocalGate } from "./lib/wrangler.mjs";

register();
const schema = await import("../src/db/schema.ts");
const { rollupsOf } = await import("../test/support/rollups.ts");

const N = Number(process.env.N ?? 1000);
const R = Number(process.env.R ?? 100);
const RUNS = Number(process.env.RUNS ?? 5);
const DAY = 86_400_000;
const NOW = Date.now();
const START = Math.floor((NOW - 365 * DAY) / DAY) * DAY;

// A small deterministic generator, so two runs seed the same history.
let seed = 42;
const rand = () => {
  seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
  return seed / 2_147_483_648;
};
const pick = (list) => list[Math.floor(rand() * list.length)];

/** floor(C·x / A): the cost that has left a lot once x of its A credits have. */
const costOut = (c, a, x) => Number((BigInt(c) * BigInt(x)) / BigInt(a));

function seedRows() {
  const journal = [];
  for (let i = 0; i < N; i++) {
    const account = `m-${i}`;
    let seq = 0;
    const row = (lot, kind, category, amount, cost, at) => {
      seq++;
      journal.push({
        entry_id: `${account}.${seq}`,
        account_id: account,
        seq,
        unit: "credits",
        kind,
        category,
        amount,
        credit_type: lot.type,
        grant_id: lot.id,
        source: lot.source,
        campaign: lot.campaign,
        cost_minor: cost,
        currency: lot.currency,
        tax_minor: kind === "grant" ? lot.tax : 0,
        tax_jurisdiction: kind === "grant" ? lot.jurisdiction : null,
        age_weight_ms: category === "consumed" ? -amount * (at - lot.at) : 0,
        recorded_at_ms: at,
      });
    };
    const lots = [
      {
        id: "p",
        type: "purchased",
        amount: 100_000,
        cost: 1_000_000,
        currency: pick(["USD", "USD", "EUR"]),
        tax: 190_000,
        jurisdiction: pick(["DE", "FR", "US-CA", "US-NY"]),
        source: pick(["stripe", "invoice", "app-store"]),
        campaign: null,
        at: START + Math.floor(rand() * 30 * DAY),
        out: 0,
      },
      {
        id: "m",
        type: "promotional",
        amount: 5_000,
        cost: 0,
        currency: null,
        tax: 0,
        jurisdiction: null,
        source: `s${i % 20}`,
        campaign: `c${i % 50}`,
        at: START + Math.floor(rand() * 30 * DAY),
        out: 0,
      },
    ];
    for (const lot of lots) row(lot, "grant", "issued", lot.amount, lot.cost, lot.at);
    const times = Array.from({ length: R - lots.length }, () => START + 30 * DAY + Math.floor(rand() * 330 * DAY)).sort(
      (a, b) => a - b,
    );
    for (const at of times) {
      const lot = pick(lots);
      const left = lot.amount - lot.out;
      if (left <= 0) continue;
      const [kind, category] = pick([
        ["debit", "consumed"],
        ["debit", "consumed"],
        ["debit", "consumed"],
        ["invoice", "consumed"],
        ["grant.refunded", "refunded"],
        ["grant.expired", "expired"],
      ]);
      const n = Math.max(1, Math.floor(left * (category === "consumed" ? 0.02 : 0.05)));
      const before = lot.out;
      lot.out += n;
      const cost = lot.currency ? costOut(lot.cost, lot.amount, lot.out) - costOut(lot.cost, lot.amount, before) : 0;
      row(lot, kind, category, -n, cost, at);
    }
  }
  return journal;
}

const lit = (v) => (v === null ? "NULL" : typeof v === "number" ? String(v) : `'${String(v).replace(/'/g, "''")}'`);

function inserts(table, columns, rows) {
  const out = [];
  for (let i = 0; i < rows.length; i += 500) {
    const values = rows.slice(i, i + 500).map((r) => `(${r.map(lit).join(",")})`);
    out.push(`INSERT INTO ${table} (${columns.join(",")}) VALUES ${values.join(",")};`);
  }
  return out;
}

// The tables' columns as the schema declares them, so the seed cannot drift from the migration.
const columnsOf = (table) => Object.values(getTableColumns(table)).map((c) => c.name);
const JOURNAL_COLUMNS = columnsOf(schema.journal);
const DAILY_COLUMNS = columnsOf(schema.journalDaily);
const ACCOUNT_COLUMNS = columnsOf(schema.accounts);

const iso = (ms) => new Date(ms).toISOString();
const month = (ms) => {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
};

async function main() {
  const journal = seedRows();
  const daily = rollupsOf(journal);
  const accounts = [
    ...Array.from({ length: 10 }, (_, p) => [`root-${p}`, null]),
    ...Array.from({ length: N }, (_, i) => [`m-${i}`, `root-${i % 10}`]),
  ].map(([id, parent]) => [id, null, parent, 0, null, null, START, START]);
  const sql = [
    ...inserts("accounts", ACCOUNT_COLUMNS, accounts),
    ...inserts(
      "journal",
      JOURNAL_COLUMNS,
      journal.map((r) => JOURNAL_COLUMNS.map((c) => r[c])),
    ),
    ...inserts("journal_daily", DAILY_COLUMNS, daily),
  ].join("\n");

  const gate = await startLocalGate({ label: "reports", keep: process.env.KEEP === "1", healthTimeoutMs: 120_000 });
  try {
    const file = join(gate.dir, "seed.sql");
    await writeFile(file, sql);
    const t0 = performance.now();
    const seeded = await runWrangler([
      "d1",
      "execute",
      "DB",
      "--local",
      "--persist-to",
      join(gate.dir, "state"),
      "--file",
      file,
      "--yes",
    ]);
    if (seeded.code !== 0) throw new Error(`seeding failed:\n${seeded.output.slice(-2000)}`);
    console.log(
      `seeded ${N} accounts × ${R} rows: ${journal.length} journal rows, ${daily.length} daily rollups ` +
        `in ${Math.round(performance.now() - t0)} ms`,
    );

    const get = async (path) => {
      const t = performance.now();
      const res = await fetch(`${gate.url}${path}`, { headers: { authorization: `Bearer ${gate.adminToken}` } });
      const text = await res.text();
      const ms = performance.now() - t;
      if (res.status !== 200) throw new Error(`${path}: ${res.status} ${text.slice(0, 300)}`);
      return { ms, bytes: text.length };
    };
    const year = `from=${iso(month(NOW - 365 * DAY))}&to=${iso(month(NOW + 31 * DAY))}&period=month`;
    const days = `from=${iso(Math.floor((NOW - 365 * DAY) / DAY) * DAY)}&to=${iso(Math.floor((NOW + DAY) / DAY) * DAY)}&period=day`;
    const quarter = `from=${iso(Math.floor((NOW - 91 * DAY) / DAY) * DAY)}&to=${iso(Math.floor((NOW + DAY) / DAY) * DAY)}&period=day`;
    const lastMonth = `from=${iso(month(month(NOW) - DAY))}&to=${iso(month(NOW))}&period=month`;
    const midDay = iso(Math.floor(NOW / DAY) * DAY - 12 * 3_600_000 - 1);
    const cases = [
      ["revenue, 13 months", `/v1/reports/revenue?currency=USD&${year}`],
      ["revenue, 366 days", `/v1/reports/revenue?currency=USD&${days}`],
      ["revenue, last month (opening over 11 months)", `/v1/reports/revenue?currency=USD&${lastMonth}`],
      ["revenue, 13 months, CSV", `/v1/reports/revenue?currency=USD&${year}&format=csv`],
      ["revenue, 13 months, parent_id (100 accounts)", `/v1/reports/revenue?currency=USD&${year}&parent_id=root-3`],
      ["revenue, 13 months, account_id", `/v1/reports/revenue?currency=USD&${year}&account_id=m-7`],
      ["liability, now", "/v1/reports/liability"],
      ["liability, mid-day yesterday (partial day from the journal)", `/v1/reports/liability?as_of=${midDay}`],
      ["liability, parent_id", "/v1/reports/liability?parent_id=root-3"],
      ["liability, account_id", "/v1/reports/liability?account_id=m-7"],
      ["liability, CSV", "/v1/reports/liability?format=csv"],
      ["credits by type, 13 months", `/v1/reports/credits?${year}`],
      ["credits by source, 13 months", `/v1/reports/credits?${year}&group_by=source`],
      ["credits by campaign, 13 months", `/v1/reports/credits?${year}&group_by=campaign`],
      // 50 campaigns × 366 days would pass MAX_REPORT_ROWS (10 000): a quarter of days instead.
      ["credits by campaign, 92 days", `/v1/reports/credits?${quarter}&group_by=campaign`],
      ["credits by campaign, 13 months, CSV", `/v1/reports/credits?${year}&group_by=campaign&format=csv`],
      ["credits by type, 13 months, parent_id", `/v1/reports/credits?${year}&parent_id=root-3`],
    ];
    const results = [];
    console.log("\nreport                                                         median ms   max ms    bytes");
    for (const [name, path] of cases) {
      await get(path); // warm: the isolate, the key cache, SQLite's page cache
      const times = [];
      let bytes = 0;
      for (let i = 0; i < RUNS; i++) {
        const r = await get(path);
        times.push(r.ms);
        bytes = r.bytes;
      }
      times.sort((a, b) => a - b);
      const median = times[Math.floor(times.length / 2)];
      const max = times[times.length - 1];
      results.push({ name, median_ms: Number(median.toFixed(1)), max_ms: Number(max.toFixed(1)), bytes });
      console.log(
        `${name.padEnd(62)} ${median.toFixed(1).padStart(9)} ${max.toFixed(1).padStart(8)} ${String(bytes).padStart(8)}`,
      );
    }
    console.log(
      `\nMEASURE_JSON ${JSON.stringify({ accounts: N, rows_per_account: R, journal_rows: journal.length, daily_rows: daily.length, runs: RUNS, results })}`,
    );
  } finally {
    await gate.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
