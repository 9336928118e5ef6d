#!/usr/bin/env node
/**
 * `npm run soak:bulk`: one bulk grant to N accounts (default 10 000) through a
 * real local `wrangler dev` (fresh temp state; real Durable Objects, the
 * local Queue and local D1), submitted twice, then checked: every account
 * holds the grant exactly once.
 *
 * A local workerd keeps every object it has touched in the last ~10 s in one
 * process; near 2 000 of them its SQLite answers SQLITE_NOMEM and the local
 * queue broker can stop delivering (seen on this machine). So when progress
 * stops for STALL_S seconds the script restarts wrangler dev on the same
 * state, as a deploy or a crash would, and sends the same POST again once
 * the job has been still for the gate's BULK_STALL_MS: that is how a client
 * resumes a stalled job (docs/api.md, Bulk grants), and it is what this run
 * proves safe: chunks delivered again, accounts granted before a crash but
 * not yet recorded, and the second submission never grant twice.
 *
 * Checks, from local D1 once every object's outbox has drained: exactly N
 * grant entries with the job's grant_id, on N distinct accounts, each of the
 * job's amount; the job's status completed with granted + skipped = N and
 * nothing failed; and SAMPLE accounts read through the API with balance =
 * amount. Exits 1 when a check fails. Env: N, SAMPLE (200), STALL_S (15),
 * KEEP=1 keeps the temp dir. Prints one line `SOAK_JSON {...}`.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { REPO_ROOT } from "./lib/devvars.mjs";
import { startLocalGate, wranglerEnv } from "./lib/wrangler.mjs";

const N = Number(process.env.N ?? 10_000);
const SAMPLE = Math.min(N, Number(process.env.SAMPLE ?? 200));
const STALL_S = Number(process.env.STALL_S ?? 15);
/** src/api/bulk.ts BULK_STALL_MS, plus a margin. */
const REPOST_AFTER_MS = 62_000;
const AMOUNT = 7;
const LIMIT_MS = 40 * 60_000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const gate = await startLocalGate({ label: "soak-bulk", keep: process.env.KEEP === "1" });
console.log(`gate ${gate.url}, state in ${gate.dir}`);

async function call(method, path, body) {
  try {
    const res = await fetch(`${gate.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${gate.adminToken}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(60_000),
    });
    const text = await res.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {}
    return { status: res.status, json, text };
  } catch (e) {
    return { status: 0, json: null, text: String(e) };
  }
}

/** One query against the run's local D1 (wrangler d1 execute --local --persist-to), retried while the running gate holds its lock. */
async function d1(sql) {
  for (let attempt = 1; ; attempt++) {
    try {
      return d1Once(sql);
    } catch (e) {
      if (attempt >= 10 || !String(e).includes("SQLITE_BUSY")) throw e;
      await sleep(2_000);
    }
  }
}

function d1Once(sql) {
  const out = spawnSync(
    process.execPath,
    [
      join(REPO_ROOT, "node_modules/wrangler/bin/wrangler.js"),
      "d1",
      "execute",
      "DB",
      "--local",
      "--persist-to",
      join(gate.dir, "state"),
      "--json",
      "--command",
      sql,
    ],
    { cwd: REPO_ROOT, env: wranglerEnv(), encoding: "utf8" },
  );
  if (out.status !== 0) throw new Error(`d1 execute failed: ${out.stderr || out.stdout}`);
  return JSON.parse(out.stdout)[0].results;
}

const stamp = Date.now().toString(36);
const ids = Array.from({ length: N }, (_, i) => `soak-${stamp}-${i}`);
const body = {
  bulk_id: `outage-${stamp}`,
  account_ids: ids,
  grant: { type: "compensatory", amount: AMOUNT, reason: "soak: outage credit", incident_id: `inc-${stamp}` },
};
const failures = [];
const check = (ok, what) => {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures.push(what);
};

const t0 = Date.now();
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(0)} s`;
let restarts = 0;
let reposts = 0;
let status = null;
try {
  const first = await call("POST", "/v1/grants/bulk", body);
  check(first.status === 202, `first POST 202 (got ${first.status} ${first.text.slice(0, 120)})`);
  const second = await call("POST", "/v1/grants/bulk", body);
  console.log(`second POST ${second.status} ${second.text.slice(0, 160)}`);
  let done = -1;
  let changedAt = Date.now();
  let restartedSinceChange = false;
  while (Date.now() - t0 < LIMIT_MS) {
    await sleep(5_000);
    const s = await call("GET", `/v1/grants/bulk/${body.bulk_id}`);
    if (s.status === 200) {
      status = s.json;
      const now = status.granted + status.skipped + status.failed;
      console.log(
        `${elapsed()} granted ${status.granted} skipped ${status.skipped} failed ${status.failed} pending ${status.pending}`,
      );
      if (status.status === "completed") break;
      if (now !== done) {
        done = now;
        changedAt = Date.now();
        restartedSinceChange = false;
      }
    } else console.log(`${elapsed()} status ${s.status} ${s.text.slice(0, 120)}`);
    const still = Date.now() - changedAt;
    if (!restartedSinceChange && still > STALL_S * 1000) {
      console.log(`${elapsed()} no progress for ${STALL_S} s: restarting wrangler dev on the same state`);
      await gate.restart();
      restarts++;
      restartedSinceChange = true;
    }
    if (restartedSinceChange && still > REPOST_AFTER_MS) {
      const again = await call("POST", "/v1/grants/bulk", body);
      reposts++;
      console.log(`${elapsed()} the same POST again: ${again.status} pending ${again.json?.pending}`);
      changedAt = Date.now();
      restartedSinceChange = false;
    }
  }
  check(status?.status === "completed", `job completed within ${LIMIT_MS / 60_000} min`);
  const seconds = (Date.now() - t0) / 1000;
  check(status?.failed === 0, `no account failed (failed ${status?.failed})`);
  check(status?.granted + status?.skipped === N, `granted + skipped = ${N} (${status?.granted} + ${status?.skipped})`);

  // The ledger's own word: each account's outbox reaches D1 on its alarm; wait until it has.
  const q = `SELECT count(*) AS entries, count(DISTINCT account_id) AS accounts, coalesce(sum(amount), 0) AS credits,
    sum(amount <> ${AMOUNT}) AS odd FROM ledger_entries WHERE grant_id = '${body.bulk_id}' AND kind = 'grant'`;
  let row = (await d1(q))[0];
  for (let i = 0; i < 60 && row.entries < N; i++) {
    console.log(`${elapsed()} D1 has ${row.entries} of ${N} grant entries; waiting for outboxes`);
    if (i === 20) {
      console.log("restarting wrangler dev so objects evicted with a pending alarm wake again");
      await gate.restart();
      restarts++;
    }
    await sleep(10_000);
    row = (await d1(q))[0];
  }
  check(row.entries === N, `D1: exactly ${N} grant entries with grant_id ${body.bulk_id} (got ${row.entries})`);
  check(row.accounts === N, `D1: on ${N} distinct accounts (got ${row.accounts})`);
  check(
    row.credits === N * AMOUNT && row.odd === 0,
    `D1: each of ${AMOUNT} credits, ${N * AMOUNT} in all (got ${row.credits})`,
  );

  let wrong = 0;
  for (let i = 0; i < SAMPLE; i++) {
    const id = ids[Math.floor((i * N) / SAMPLE)];
    const b = await call("GET", `/v1/accounts/${id}/balance`);
    if (b.status !== 200 || b.json?.available !== AMOUNT) {
      wrong++;
      if (wrong <= 5) console.log(`  ${id}: ${b.status} ${b.text.slice(0, 160)}`);
    }
  }
  check(wrong === 0, `API: ${SAMPLE} sampled accounts each hold exactly ${AMOUNT} (${wrong} do not)`);
  console.log(
    `SOAK_JSON ${JSON.stringify({ accounts: N, seconds, restarts, reposts, status, d1: row, sampled: SAMPLE, failures })}`,
  );
} finally {
  await gate.stop();
}
process.exit(failures.length === 0 ? 0 : 1);
