#!/usr/bin/env node
/**
 * `node scripts/measure-jobs.mjs`: how many accounts one cron run reconciles
 * within the Workers CPU budget, measured two ways:
 *
 *   A. the reconcile job's own CPU work per account, in Node (same BoringSSL-
 *      class SHA-256 as workerd): row → entry mapping, chain re-verification
 *      of the new entries, the compare — the part that is Worker CPU;
 *   B. a real local `wrangler dev` (fresh temp state): N accounts of E entries
 *      each, then the real cron via GET /cdn-cgi/handler/scheduled, run after
 *      run until every account is reconciled. For each run: accounts checked,
 *      the run's wall time, and the CPU time the whole workerd process used
 *      (utime+stime from /proc) — an upper bound, since locally workerd also
 *      runs the Durable Objects and D1's SQLite, which in production are
 *      other machines and do not count against the cron Worker's CPU.
 *
 * Env: N (default 300) accounts, E (default 10) entries per account.
 * Prints a table and one line `MEASURE_JSON {...}`.
 */
import { readdirSync, readFileSync } from "node:fs";
import { register } from "tsx/esm/api";
import { startLocalGate } from "./lib/wrangler.mjs";

register();
const ledger = await import("../src/ledger/index.ts");
const { entryFromD1 } = await import("../src/db/reconciliation.ts");
const { RECONCILE_BATCH, AUDIT_BATCH, VERIFY_LIMIT } = await import("../src/cron/reconcile.ts");

const N = Number(process.env.N ?? 300);
const E = Number(process.env.E ?? 10);
const CPU_BUDGET_MS = 30_000; // Workers Standard default CPU limit per invocation (cron included)
const TICK_MS = 10; // /proc stat times are in USER_HZ ticks (100 per second on Linux)

// ── A. the job's CPU per account, in Node ───────────────────────────────────

function d1Rows(accountId, count) {
  const rows = [];
  let prev = ledger.GENESIS_HASH;
  for (let seq = 1; seq <= count; seq++) {
    const body = {
      account_id: accountId,
      seq,
      entry_id: `txn_${seq}.0`,
      txn_id: `txn_${seq}`,
      kind: "debit",
      unit: "credits",
      amount: -3,
      held_delta: 0,
      grant_id: "g1",
      credit_type: "purchased",
      ref: `req-${seq}`,
      actor: "key_1:gateway",
      reason: null,
      effective_at: new Date(1_800_000_000_000 + seq).toISOString(),
      recorded_at: new Date(1_800_000_000_000 + seq).toISOString(),
      prev_hash: prev,
    };
    const hash = ledger.entryHash(body);
    rows.push({
      ...body,
      effective_at_ms: Date.parse(body.effective_at),
      recorded_at_ms: Date.parse(body.recorded_at),
      hash,
    });
    prev = hash;
  }
  return rows;
}

function pureCpu(entriesPerAccount, accounts) {
  const rows = d1Rows("acct-bench", entriesPerAccount);
  const lots = [
    { grantId: "g1", unit: "credits", type: "purchased", remaining: 1000, held: 0 },
    { grantId: "g2", unit: "credits", type: "promotional", remaining: 50, held: 10 },
  ];
  const snap = { seq: entriesPerAccount, hash: rows.at(-1).hash, pending: 0, totals: ledger.totalsOf(lots) };
  const replay = { count: entriesPerAccount, hashAtSeq: snap.hash, maxSeq: entriesPerAccount, totals: snap.totals };
  const start = process.cpuUsage();
  for (let i = 0; i < accounts; i++) {
    const slice = rows.map(entryFromD1);
    if (ledger.chainDrift(slice, 0, ledger.GENESIS_HASH) !== null) throw new Error("chain should verify");
    if (ledger.compareAccount(snap, replay, snap.seq).length !== 0) throw new Error("should compare equal");
  }
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000 / accounts; // ms per account
}

// ── B. real wrangler dev ──────────────────────────────────────────────────

/** Every process under `pid` (wrangler → workerd …). */
function descendants(pid) {
  const children = new Map();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(name));
      children.set(ppid, list);
    } catch {
      // gone
    }
  }
  const out = [];
  const walk = (p) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

/** CPU ms (user + system) used so far by the workerd processes under `pid`. */
function workerdCpuMs(pid) {
  let ticks = 0;
  for (const p of descendants(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      if (!comm.includes("workerd")) continue;
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone
    }
  }
  return ticks * TICK_MS;
}

async function main() {
  const gate = await startLocalGate({ label: "measure", healthTimeoutMs: 120_000 });
  const { url, adminToken, child } = gate;
  const call = async (method, path, body) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
  const cron = async () => {
    const cpu0 = workerdCpuMs(child.pid);
    const t0 = performance.now();
    const res = await fetch(`${url}/cdn-cgi/handler/scheduled?cron=${encodeURIComponent("*/5 * * * *")}`);
    await res.text();
    const wallMs = performance.now() - t0;
    const cpuMs = workerdCpuMs(child.pid) - cpu0;
    const run = (await call("GET", "/v1/reconciliation/runs?limit=1")).runs[0];
    return { wallMs, cpuMs, run };
  };
  try {
    const idle = await cron(); // nothing touched yet: the fixed cost of a run
    const started = performance.now();
    const ids = Array.from({ length: N }, (_, i) => `m-${i}`);
    for (let i = 0; i < ids.length; i += 16) {
      await Promise.all(
        ids.slice(i, i + 16).map(async (a) => {
          await call("POST", `/v1/accounts/${a}/grants`, { grant_id: "g1", amount: 1_000_000, type: "purchased" });
          for (let d = 1; d < E; d++) await call("POST", `/v1/accounts/${a}/debits`, { debit_id: `d${d}`, amount: 3 });
        }),
      );
    }
    console.log(`seeded ${N} accounts × ${E} entries in ${Math.round(performance.now() - started)} ms`);
    await new Promise((r) => setTimeout(r, 3000)); // outboxes ship 250 ms after the last write
    const runs = [];
    let reconciled = 0;
    while (reconciled < N && runs.length < 20) {
      const r = await cron();
      runs.push(r);
      reconciled += r.run.accounts_checked;
    }
    const pureMs = pureCpu(E, 2000);
    const pureMs1000 = pureCpu(VERIFY_LIMIT, 50);
    const busy = runs.filter((r) => r.run.accounts_checked >= RECONCILE_BATCH);
    const perAccountCpu = busy.length
      ? busy.reduce((s, r) => s + (r.cpuMs - idle.cpuMs) / r.run.accounts_checked, 0) / busy.length
      : null;
    const perAccountWall = busy.length
      ? busy.reduce((s, r) => s + r.run.duration_ms / r.run.accounts_checked, 0) / busy.length
      : null;
    console.log("\nrun  checked  run wall ms  cron wall ms  workerd CPU ms");
    console.log(
      `idle ${String(idle.run.accounts_checked).padStart(7)}  ${String(idle.run.duration_ms).padStart(11)}  ${String(Math.round(idle.wallMs)).padStart(12)}  ${String(Math.round(idle.cpuMs)).padStart(14)}`,
    );
    for (const [i, r] of runs.entries()) {
      console.log(
        `${String(i + 1).padStart(4)} ${String(r.run.accounts_checked).padStart(7)}  ${String(r.run.duration_ms).padStart(11)}  ${String(Math.round(r.wallMs)).padStart(12)}  ${String(Math.round(r.cpuMs)).padStart(14)}`,
      );
    }
    const result = {
      accounts: N,
      entries_per_account: E,
      batch: { touched: RECONCILE_BATCH, audit: AUDIT_BATCH, verify_limit: VERIFY_LIMIT },
      runs_to_reconcile_all: runs.length,
      pure_cpu_ms_per_account: Number(pureMs.toFixed(4)),
      pure_cpu_ms_per_account_1000_new_entries: Number(pureMs1000.toFixed(3)),
      workerd_cpu_ms_per_account_upper_bound: perAccountCpu === null ? null : Number(perAccountCpu.toFixed(3)),
      wall_ms_per_account_local: perAccountWall === null ? null : Number(perAccountWall.toFixed(3)),
      accounts_in_30s_cpu_upper_bound: perAccountCpu ? Math.floor(CPU_BUDGET_MS / perAccountCpu) : null,
      accounts_in_30s_cpu_pure: Math.floor(CPU_BUDGET_MS / pureMs),
    };
    console.log(`\nMEASURE_JSON ${JSON.stringify(result)}`);
  } finally {
    await gate.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
