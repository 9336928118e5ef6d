/**
 * The soak's end (scripts/soak.mjs), faults off and traffic stopped:
 *   1. every account's ledger, read from its Durable Object page by page,
 *      re-verified (seq gapless from 1, each prev_hash the previous hash,
 *      each hash the SHA-256 of the entry's RFC 8785 form without it) and
 *      replayed: Σ amount = available + held (+ pending), Σ held_delta =
 *      held, Σ amount per credit type = by_type (+ pending of that type), as
 *      the balance read serves them; and the soak's model the same;
 *   2. D1 has caught up: polled (bounded) until every account's D1 rows have
 *      the DO's count, head seq and head hash, and the same sums in total and
 *      per credit type (the cron runs between polls, for its re-drive);
 *   3. reconciliation: the cron runs until every account's checkpoint stands
 *      at its DO head (bounded), then every run recorded is read through
 *      /v1/reconciliation/runs and its drifts summed (runs during the soak
 *      included).
 * D1 is read with `wrangler d1 execute --local` on the run's own state, as
 * scripts/soak-bulk.mjs does.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { join } from "node:path";
import canonicalize from "canonicalize";
import { REPO_ROOT } from "./lib/devvars.mjs";
import { wranglerEnv } from "./lib/wrangler.mjs";
import { runCron } from "./soak-faults.mjs";
import { mapLimit, sleep } from "./soak-http.mjs";
import { balanceTotal } from "./soak-model.mjs";

/** Ledger page size (the route's maximum) and pages read per account at most. */
const LEDGER_PAGE = 1_000;
const LEDGER_PAGES_MAX = 100;
/** Accounts read at once at the end. */
const READ_PARALLEL = 16;
/** How long D1 may take to catch up once faults are off, and how often it is polled. */
export const DRAIN_TIMEOUT_MS = 180_000;
const DRAIN_POLL_MS = 5_000;
/** How long the final reconciliation may take (its watermark keeps a one-minute overlap: src/cron/touched.ts). */
export const RECONCILE_TIMEOUT_MS = 240_000;
const RECONCILE_IDLE_MS = 10_000;
/** Reconciliation runs read through the API at most (pages of 200). */
const RUN_PAGES_MAX = 100;
const TYPES = ["promotional", "compensatory", "purchased"];
const GENESIS = "0".repeat(64);

const sha256 = (text) => createHash("sha256").update(text).digest("hex");

/** Problems with one account's chain, as a client re-verifies an export. */
export function chainProblems(entries) {
  const problems = [];
  let prev = GENESIS;
  entries.forEach((e, i) => {
    const { hash, ...rest } = e;
    if (e.seq !== i + 1) problems.push(`seq ${e.seq} at position ${i + 1}`);
    if (e.prev_hash !== prev) problems.push(`seq ${e.seq}: prev_hash does not link`);
    if (sha256(canonicalize(rest)) !== hash) problems.push(`seq ${e.seq}: hash does not verify`);
    prev = hash;
  });
  return problems;
}

/** Σ amount, Σ held_delta and Σ amount per credit type of the credits entries; other units counted apart. */
export function replaySums(entries) {
  const out = { amount: 0, held: 0, byType: Object.fromEntries(TYPES.map((t) => [t, 0])), otherUnits: 0 };
  for (const e of entries) {
    if (e.unit !== "credits") {
      out.otherUnits++;
      continue;
    }
    out.amount += e.amount;
    out.held += e.held_delta;
    out.byType[e.credit_type] = (out.byType[e.credit_type] ?? 0) + e.amount;
  }
  return out;
}

async function readLedger(client, id) {
  const entries = [];
  let after = 0;
  for (let page = 0; page < LEDGER_PAGES_MAX; page++) {
    const r = await client.send("GET", `/v1/accounts/${id}/ledger?after_seq=${after}&limit=${LEDGER_PAGE}`);
    if (r?.status !== 200) return null;
    entries.push(...r.json.entries);
    if (r.json.next_after_seq === null) return entries;
    after = r.json.next_after_seq;
  }
  return null;
}

/** Step 1 for every account the soak created; answers the DO heads and sums for steps 2 and 3. */
export async function replayAccounts({ client, models, check }) {
  const heads = new Map();
  const figures = { accounts: 0, entries: 0, replay_mismatches: 0, chain_problems: 0 };
  await mapLimit(
    models.filter((a) => a.exists),
    READ_PARALLEL,
    async (a) => {
      const entries = await readLedger(client, a.id);
      const bal = await client.send("GET", `/v1/accounts/${a.id}/balance`);
      figures.accounts++;
      if (!entries || bal?.status !== 200) {
        figures.replay_mismatches++;
        check.expect(false, a.id, `end: ledger or balance unreadable (${bal?.status})`);
        return;
      }
      figures.entries += entries.length;
      const chain = chainProblems(entries);
      figures.chain_problems += chain.length;
      const sums = replaySums(entries);
      const b = bal.json;
      const pendingByType = Object.fromEntries(TYPES.map((t) => [t, 0]));
      for (const p of b.pending ?? []) pendingByType[a.lots.get(p.grant_id)?.type ?? "purchased"] += p.amount;
      const byTypeOk = TYPES.every((t) => sums.byType[t] === (b.by_type?.[t] ?? 0) + pendingByType[t]);
      const ok =
        chain.length === 0 &&
        sums.otherUnits === 0 &&
        sums.amount === balanceTotal(b) &&
        sums.held === b.held &&
        byTypeOk &&
        !b.pending_more;
      if (!ok) figures.replay_mismatches++;
      check.expect(
        ok,
        a.id,
        `end: ledger replays to Σ ${sums.amount} held ${sums.held} ${JSON.stringify(sums.byType)}, balance total ${balanceTotal(b)} held ${b.held} ${JSON.stringify(b.by_type)}; chain: ${chain.slice(0, 3).join("; ") || "ok"}`,
      );
      check.expect(
        a.total === sums.amount && a.held === sums.held,
        a.id,
        `end: model total ${a.total} held ${a.held}, ledger ${sums.amount} held ${sums.held}`,
      );
      const last = entries[entries.length - 1];
      heads.set(a.id, { count: entries.length, seq: last?.seq ?? 0, hash: last?.hash ?? null, sums });
    },
  );
  return { heads, figures };
}

/** One or more statements against the run's local D1; retried while the running gate holds its lock. */
export async function d1(gate, sql) {
  for (let attempt = 1; ; attempt++) {
    const out = spawnSync(
      process.execPath,
      [
        join(REPO_ROOT, "node_modules/wrangler/bin/wrangler.js"),
        ...["d1", "execute", "DB", "--local", "--persist-to", join(gate.dir, "state"), "--json", "--command", sql],
      ],
      { cwd: REPO_ROOT, env: wranglerEnv(), encoding: "utf8", maxBuffer: 256 * 1024 * 1024 },
    );
    if (out.status === 0) return JSON.parse(out.stdout).map((r) => r.results);
    const err = `${out.stderr}${out.stdout}`;
    if (attempt >= 10 || !/SQLITE_BUSY|database is locked/.test(err)) throw new Error(`d1 execute failed: ${err}`);
    await sleep(2_000);
  }
}

const D1_HEADS = `SELECT m.account_id AS account_id, m.n AS n, m.s AS s, m.amt AS amt, m.hd AS hd, e.hash AS hash
  FROM (SELECT account_id, count(*) AS n, max(seq) AS s, sum(amount) AS amt, sum(held_delta) AS hd
        FROM ledger_entries WHERE unit = 'credits' GROUP BY account_id) m
  JOIN ledger_entries e ON e.account_id = m.account_id AND e.seq = m.s;
  SELECT account_id, credit_type, sum(amount) AS amt FROM ledger_entries WHERE unit = 'credits' GROUP BY account_id, credit_type`;

/** Accounts whose D1 copy differs from their DO (count, head seq and hash, sums in total and per type). */
async function d1Differences(gate, heads) {
  const [rows, typed] = await d1(gate, D1_HEADS);
  const byAccount = new Map(rows.map((r) => [r.account_id, { ...r, byType: {} }]));
  for (const t of typed) {
    const r = byAccount.get(t.account_id);
    if (r) r.byType[t.credit_type] = t.amt;
  }
  const diffs = [];
  for (const [id, h] of heads) {
    const r = byAccount.get(id) ?? { n: 0, s: 0, amt: 0, hd: 0, hash: null, byType: {} };
    const same =
      r.n === h.count &&
      (r.s ?? 0) === h.seq &&
      r.hash === h.hash &&
      (r.amt ?? 0) === h.sums.amount &&
      (r.hd ?? 0) === h.sums.held &&
      TYPES.every((t) => (r.byType[t] ?? 0) === h.sums.byType[t]);
    if (!same)
      diffs.push(
        `${id}: D1 ${r.n} rows to seq ${r.s} (${String(r.hash).slice(0, 12)}), DO ${h.count} to ${h.seq} (${String(h.hash).slice(0, 12)})`,
      );
  }
  byAccount.forEach((_, id) => {
    if (!heads.has(id)) diffs.push(`${id}: in D1, not among the soak's accounts`);
  });
  return diffs;
}

/** Step 2: polls D1 until it equals every DO, bounded; the cron runs between polls. */
export async function waitForD1({ client, gate, heads, log }) {
  const deadline = Date.now() + DRAIN_TIMEOUT_MS;
  const t0 = Date.now();
  for (let poll = 1; ; poll++) {
    const diffs = await d1Differences(gate, heads);
    if (diffs.length === 0 || Date.now() >= deadline) {
      return {
        d1_mismatches: diffs.length,
        details: diffs.slice(0, 10),
        drain_seconds: Math.round((Date.now() - t0) / 1000),
      };
    }
    log(`D1 differs from the Durable Objects on ${diffs.length} accounts (poll ${poll}); running the cron and waiting`);
    await runCron(client);
    await sleep(DRAIN_POLL_MS);
  }
}

/** Step 3: runs the cron until every account with entries is reconciled at its head, then sums every run. */
export async function reconcileAll({ client, gate, heads, log }) {
  const want = [...heads].filter(([, h]) => h.count > 0);
  const deadline = Date.now() + RECONCILE_TIMEOUT_MS;
  let covered = 0;
  let finalRuns = 0;
  while (Date.now() < deadline) {
    await runCron(client);
    finalRuns++;
    const [cps] = await d1(gate, "SELECT account_id, verified_seq, verified_hash FROM reconciliation_checkpoints");
    const at = new Map(cps.map((c) => [c.account_id, c]));
    const now = want.filter(
      ([id, h]) => at.get(id)?.verified_seq === h.seq && at.get(id)?.verified_hash === h.hash,
    ).length;
    log(`reconciliation run ${finalRuns}: ${now} of ${want.length} accounts reconciled at their head`);
    if (now === want.length) {
      covered = now;
      break;
    }
    if (now === covered) await sleep(RECONCILE_IDLE_MS); // the watermark's one-minute overlap holds the rest back
    covered = now;
  }
  const runs = [];
  let cursor = null;
  for (let page = 0; page < RUN_PAGES_MAX; page++) {
    const r = await client.send(
      "GET",
      `/v1/reconciliation/runs?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
    );
    if (r?.status !== 200) throw new Error(`reconciliation runs unreadable: ${r?.status} ${r?.text}`);
    runs.push(...r.json.runs);
    cursor = r.json.next_cursor;
    if (!cursor) break;
  }
  const sum = (k) => runs.reduce((s, x) => s + x[k], 0);
  const drifts = [];
  for (const run of runs.filter((x) => x.drifts > 0).slice(0, 5)) {
    const r = await client.send("GET", `/v1/reconciliation/runs/${run.id}`);
    for (const d of r?.json?.drifts?.slice(0, 5) ?? []) drifts.push(`${run.id} ${d.account_id} ${d.kind}: ${d.detail}`);
  }
  return {
    reconciliation_runs: runs.length,
    final_runs: finalRuns,
    accounts_checked: sum("accounts_checked"),
    lagging: sum("accounts_lagging"),
    failed: sum("accounts_failed"),
    entries_verified: sum("entries_verified"),
    drift: sum("drifts"),
    reconciled_at_head: covered,
    unreconciled: want.length - covered,
    drift_details: drifts,
  };
}
