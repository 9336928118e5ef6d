#!/usr/bin/env node
/**
 * `npm run soak`: minutes of mixed traffic over many accounts against a
 * private `wrangler dev` (fresh temp state, its own secrets, loopback only)
 * started with FAULT_INJECTION=1, with faults injected every few seconds,
 * then proof that nothing was lost, doubled or changed.
 *
 *   node scripts/soak.mjs [--minutes 10] [--accounts 1000] [--concurrency 16]
 *                         [--seed N] [--restart-every 150] [--quick] [--keep]
 *
 * `--quick`: 1 minute (for trying it). `--restart-every S`: seconds between
 * restarts of wrangler dev (0: none). `--keep` keeps the temp dir.
 *
 * Traffic (scripts/soak-ops*.mjs): grants of every kind (purchased with a
 * cost basis, promotional with an expiry, compensatory, effective later,
 * awaiting payment then activated or cancelled), debits (a share short:
 * 402), holds captured in part or whole or released, receipts settled,
 * usage batches over several accounts, transfers, voids, refunds, invoices
 * and their voids, account updates, balance reads; a share of requests sent
 * twice at once, earlier requests sent again (same body: the first answer;
 * another body: 409), every request without a definitive answer sent again
 * with the same id. CONCURRENCY operations in flight, one per account at a
 * time (scripts/soak-model.mjs says why), each answer checked against the
 * soak's own model of every account.
 *
 * Faults (scripts/soak-faults.mjs): D1 shipment errors, lost answers and
 * delays; Durable Objects reset mid-shipment; webhook deliveries failing and
 * hanging, the loopback receiver failing; wrangler dev restarted on the same
 * state; the cron every 20 s, sometimes twice at once.
 *
 * End (scripts/soak-check.mjs): faults off, unresolved requests sent again,
 * every ledger re-verified and replayed against its balance and the model,
 * D1 polled until it equals every Durable Object, reconciliation run until
 * every account is reconciled at its head, with zero drift over every run.
 * Prints a table and one line `RELIABILITY {...}`, writes the same JSON to
 * artifacts/reliability/soak.json, exits 1 on any mismatch. Every process it
 * started is stopped on the way out (also on SIGINT/SIGTERM); past minutes +
 * 5 it gives up with a message.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { REPO_ROOT } from "./lib/devvars.mjs";
import { startLocalGate } from "./lib/wrangler.mjs";
import { reconcileAll, replayAccounts, waitForD1 } from "./soak-check.mjs";
import { startFaults, startReceiver } from "./soak-faults.mjs";
import { makeClient, rngFrom, SEND_BUDGET_MS, sleep } from "./soak-http.mjs";
import { AccountModel, Checker } from "./soak-model.mjs";
import { pickOperation, runOperation } from "./soak-run.mjs";

const { values: opt } = parseArgs({
  options: {
    minutes: { type: "string" },
    accounts: { type: "string", default: "1000" },
    concurrency: { type: "string", default: "16" },
    seed: { type: "string" },
    "restart-every": { type: "string" },
    quick: { type: "boolean", default: false },
    keep: { type: "boolean", default: false },
  },
});
const MINUTES = Number(opt.minutes ?? (opt.quick ? 1 : 10));
const ACCOUNTS = Number(opt.accounts);
const CONCURRENCY = Number(opt.concurrency);
const SEED = Number(opt.seed ?? Math.floor(Math.random() * 2 ** 31));
const RESTART_EVERY_S = Number(opt["restart-every"] ?? (opt.quick ? 30 : 150));
for (const [name, v, lo, hi] of [
  ["--minutes", MINUTES, 0.1, 120],
  ["--accounts", ACCOUNTS, 2, 10_000],
  ["--concurrency", CONCURRENCY, 1, 64],
  ["--restart-every", RESTART_EVERY_S, 0, 3_600],
]) {
  if (!Number.isFinite(v) || v < lo || v > hi) {
    console.error(`soak: ${name} must be a number in ${lo}..${hi}`);
    process.exit(2);
  }
}
/** The whole run, start to verdict, may take at most this long. */
const GIVE_UP_MS = (MINUTES + 5) * 60_000;
const PROGRESS_EVERY_MS = 30_000;
const ARTIFACT = join(REPO_ROOT, "artifacts", "reliability", "soak.json");

const t0 = Date.now();
const log = (line) => console.log(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${line}`);
let gate = null;
let receiver = null;
let faults = null;
let finishing = false;

/** Stops everything this run started, then exits with `code`. */
async function finish(code) {
  if (finishing) return;
  finishing = true;
  clearTimeout(watchdog);
  try {
    faults?.halt();
    await receiver?.close().catch(() => {});
    await gate?.stop();
  } catch (e) {
    console.error(`soak: while stopping: ${e}`);
  }
  process.exit(code);
}
const watchdog = setTimeout(() => {
  console.error(`soak: gave up: not finished within ${MINUTES + 5} minutes (${MINUTES} of traffic + 5); stopping`);
  finish(1);
}, GIVE_UP_MS);
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    console.error(`soak: ${sig}: stopping wrangler dev and the receiver`);
    finish(130);
  });
}

async function main() {
  const stats = { requests: 0, retries: 0, statuses: {}, ops: {}, duplicates: 0, refused: 0, transfersUndone: 0 };
  receiver = await startReceiver();
  gate = await startLocalGate({ label: "soak", keep: opt.keep, vars: { FAULT_INJECTION: "1" } });
  log(`gate ${gate.url}, state in ${gate.dir}; seed ${SEED}`);
  const client = makeClient({ url: gate.url, token: gate.adminToken, stats });
  const probe = await client.call("GET", "/__faults");
  if (probe.status !== 200 || probe.json?.allowed !== true) {
    throw new Error(`the gate does not take faults (GET /__faults: ${probe.status} ${probe.text.slice(0, 200)})`);
  }
  const hook = await client.send("POST", "/v1/webhooks", {
    url: receiver.url,
    event_types: ["balance.low", "grant.activated"],
    description: "soak receiver",
  });
  if (hook?.status !== 201) throw new Error(`webhook not registered: ${hook?.status} ${hook?.text}`);

  const stamp = Date.now().toString(36);
  const models = Array.from({ length: ACCOUNTS }, (_, i) => new AccountModel(`soak-${stamp}-${i}`));
  const check = new Checker();
  const rng = rngFrom(SEED);
  const deadlineMs = Date.now() + MINUTES * 60_000;
  const byId = new Map(models.map((a) => [a.id, a]));
  const ctx = { client, check, rng, stats, stamp, deadlineMs, models, byId, unresolved: [], transfers: 0 };
  faults = startFaults({ client, gate, receiver, seed: SEED, restartEveryMs: RESTART_EVERY_S * 1000, log });

  let lastProgress = Date.now();
  const worker = async () => {
    while (Date.now() < deadlineMs && !finishing) {
      const picked = pickOperation(ctx);
      if (!picked) {
        await sleep(10);
        continue;
      }
      for (const a of picked.accts) a.busy = true;
      try {
        await runOperation(ctx, picked);
      } catch (e) {
        check.expect(false, picked.accts[0].id, `${picked.op} threw: ${e?.stack ?? e}`);
      } finally {
        for (const a of picked.accts) a.busy = false;
      }
      if (Date.now() - lastProgress >= PROGRESS_EVERY_MS) {
        lastProgress = Date.now();
        const ops = Object.values(stats.ops).reduce((s, v) => s + v, 0);
        log(
          `${ops} operations, ${stats.requests} requests (${stats.retries} retried), ${models.filter((a) => a.exists).length} accounts, ${check.count} mismatches, ${ctx.unresolved.length} set aside; faults: ${faults.figures.phases} phases, ${faults.figures.restarts} restarts`,
        );
      }
    }
  };
  log(`traffic: ${MINUTES} min, ${ACCOUNTS} accounts, ${CONCURRENCY} in flight`);
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const trafficRequests = stats.requests;
  log(`traffic stopped after ${trafficRequests} requests; turning faults off`);
  const cycle = faults.figures;
  const injected = await faults.stop();
  faults = null;
  log(
    `faults injected: ${injected.total} (${JSON.stringify(injected.counters)}, receiver ${receiver.state.failed} failed / ${receiver.state.hung} hung)`,
  );

  // Requests that never got a definitive answer: the same request again, faults off.
  let unresolved = 0;
  for (const u of ctx.unresolved) {
    const r = await client.send(u.req.method, u.req.path, u.req.body, { budgetMs: SEND_BUDGET_MS });
    if (!r) {
      unresolved++;
      check.expect(false, u.accts[0].id, `${u.req.kind} ${u.req.path}: still no definitive answer`);
      continue;
    }
    await u.req.apply(r, u.t0, Date.now());
    for (const a of u.accts) a.unresolved = null;
  }
  log(`${ctx.unresolved.length} requests set aside during the soak, ${unresolved} still unresolved`);
  const lastEff = Math.max(0, ...models.flatMap((a) => a.pend.map((p) => p.effMs)));
  if (lastEff > Date.now()) await sleep(lastEff - Date.now() + 2_000);

  log("end: re-verifying and replaying every ledger against its balance and the model");
  const modelMismatchesDuringTraffic = check.count;
  const { heads, figures: replay } = await replayAccounts({ client, models, check });
  log(`end: ${replay.accounts} accounts, ${replay.entries} entries, ${replay.replay_mismatches} replay mismatches`);
  const d1 = await waitForD1({ client, gate, heads, log });
  log(
    `end: D1 ${d1.d1_mismatches === 0 ? "equals" : "DIFFERS from"} the Durable Objects (after ${d1.drain_seconds} s)`,
  );
  const recon = await reconcileAll({ client, gate, heads, log });

  const result = {
    suite: "soak",
    minutes: MINUTES,
    accounts: ACCOUNTS,
    requests: trafficRequests,
    faults_injected: injected.total,
    drift: recon.drift,
    replay_mismatches: replay.replay_mismatches,
    d1_mismatches: d1.d1_mismatches,
    model_mismatches: check.count,
    unresolved,
    unreconciled: recon.unreconciled,
    seed: SEED,
    accounts_used: replay.accounts,
    entries: replay.entries,
    operations: Object.values(stats.ops).reduce((s, v) => s + v, 0),
    model_checks: check.checks,
    requests_total: stats.requests,
    retried: stats.retries,
    answers_not_json: stats.notJson ?? 0,
    concurrency: CONCURRENCY,
    duplicates_at_once: stats.duplicates,
    refused_as_expected: stats.refused,
    transfers_undone: stats.transfersUndone,
    faults: {
      ...injected.counters,
      restarts: injected.total - injected.worker - receiver.state.failed - receiver.state.hung,
      receiver_failed: receiver.state.failed,
      receiver_hung: receiver.state.hung,
    },
    fault_phases: cycle.phases,
    cron_runs_during_traffic: cycle.cron_runs,
    cron_failed_during_traffic: cycle.cron_failed,
    restart_failed: cycle.restart_failed,
    reconciliation: {
      runs: recon.reconciliation_runs,
      final_runs: recon.final_runs,
      accounts_checked: recon.accounts_checked,
      lagging: recon.lagging,
      failed: recon.failed,
      entries_verified: recon.entries_verified,
    },
    ops: stats.ops,
    statuses: stats.statuses,
    seconds: Math.round((Date.now() - t0) / 1000),
  };
  printTable(result, { modelMismatchesDuringTraffic, check, d1, recon, stats });
  const line = JSON.stringify(result);
  console.log(`RELIABILITY ${line}`);
  mkdirSync(join(REPO_ROOT, "artifacts", "reliability"), { recursive: true });
  writeFileSync(ARTIFACT, `${line}\n`);
  const failed =
    result.drift +
    result.replay_mismatches +
    result.d1_mismatches +
    result.model_mismatches +
    unresolved +
    recon.unreconciled;
  return failed === 0 ? 0 : 1;
}

function printTable(r, { modelMismatchesDuringTraffic, check, d1, recon, stats }) {
  const rows = [
    ["minutes of traffic", r.minutes],
    ["accounts (used)", `${r.accounts} (${r.accounts_used})`],
    [
      "operations / requests during traffic (retried) / all",
      `${r.operations} / ${r.requests} (${r.retried}) / ${r.requests_total}`,
    ],
    ["duplicates sent at once", r.duplicates_at_once],
    ["refused as the model expected (402, …)", r.refused_as_expected],
    ["faults injected", `${r.faults_injected} ${JSON.stringify(r.faults)}`],
    [
      "fault phases set / cron runs during traffic (failed)",
      `${r.fault_phases} / ${r.cron_runs_during_traffic} (${r.cron_failed_during_traffic})`,
    ],
    [
      "model checks / mismatches (during traffic)",
      `${r.model_checks} / ${r.model_mismatches} (${modelMismatchesDuringTraffic})`,
    ],
    [
      "2xx/4xx answers that were not JSON (sent again)",
      `${r.answers_not_json}${r.answers_not_json ? ` e.g. ${stats.notJsonSample}` : ""}`,
    ],
    ["requests unresolved at the end", r.unresolved],
    ["ledger entries re-verified", r.entries],
    ["replay mismatches", r.replay_mismatches],
    ["D1 ≠ Durable Object (accounts)", r.d1_mismatches],
    [
      "reconciliation runs (final) / checked / drift",
      `${recon.reconciliation_runs} (${recon.final_runs}) / ${recon.accounts_checked} / ${recon.drift}`,
    ],
    ["accounts not reconciled at their head", recon.unreconciled],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  console.log("\nsoak figures");
  for (const [k, v] of rows) console.log(`  ${k.padEnd(w)}  ${v}`);
  for (const d of [...check.details.slice(0, 20), ...d1.details, ...recon.drift_details]) console.log(`  ! ${d}`);
  console.log(`  ops: ${JSON.stringify(r.ops)}`);
  console.log(`  statuses: ${JSON.stringify(r.statuses)}\n`);
}

main()
  .then((code) => finish(code))
  .catch((e) => {
    console.error(`soak: ${e?.stack ?? e}`);
    finish(1);
  });
