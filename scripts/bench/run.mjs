#!/usr/bin/env node
/**
 * `npm run bench` (`-- --quick` for a short run): measures the gate on this
 * machine over loopback against a private `wrangler dev` of the bench's own
 * Worker (bench/worker.ts: production plus a no-op route and fixture seeding;
 * fresh state and secrets in a temp dir), side by side with the strict debit a
 * team would write instead on PostgreSQL and on Redis (scripts/bench/peers.mjs;
 * Debian's servers, installed with apt-get when missing). Load: autocannon.
 *
 * Scenarios (BENCHMARKS.md says what each figure means):
 *   verify_offline  full ES256 receipt verifications/s on one core (ReceiptVerifier)
 *   noop_do         HTTP → Worker → Durable Object RPC doing nothing: the stack's floor
 *   debit_hot       one account with 50 lots of mixed priority and expiry, unique debit ids
 *   debit_spread    debits spread over SPREAD_ACCOUNTS accounts (BENCH_SPREAD_ACCOUNTS)
 *   usage_batch     usage events/s through POST /v1/usage, batches of 1 000, one in flight
 *   ledger_parts    µs per operation inside the Durable Object, no HTTP: a whole debit, and each
 *                   part alone (the draw and its response, the hash chain, the outbox rows, the
 *                   idempotency record): what the peers skip, measured (bench/worker.ts profile)
 *   storage         100 000 debits (10 000 with --quick) through the real operation inside one
 *                   object: SQLite bytes per debit, and per table
 *   receipts        admitted/s through ReceiptWallet + ReceiptVerifier, receipts of 100
 *   peer_postgres   the same strict debit on PostgreSQL (UPDATE … WHERE balance >= $1, idempotency row)
 *   peer_redis      the same on Redis (a Lua decrement-if-enough, AOF everysec)
 *   lots_scaling    debit p50/p99 at 1, 100, 10 000 and 100 000 live lots (half expiring),
 *                   and at 100 lots after 10^6 entries of history; the response size at each
 * Prints a table and one line `BENCH_JSON {"machine": …, "scenarios": {…}}`.
 * Bounded: about 3 minutes by default, 45 s with --quick; stops by itself.
 */
// One libuv thread: WebCrypto jobs then run on one core, as the verify figure claims.
process.env.UV_THREADPOOL_SIZE = "1";

import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { importJWK, SignJWT } from "jose";
import { register } from "tsx/esm/api";
import { startLocalGate } from "../lib/wrangler.mjs";
import { drive, groupPids } from "./load.mjs";
import { startPostgresPeer, startRedisPeer } from "./peers.mjs";
import { report } from "./report.mjs";

register();
const { CreditGateClient, ReceiptVerifier, ReceiptWallet } = await import("../../src/sdk/index.ts");

const QUICK = process.argv.includes("--quick");
/** Seconds each timed scenario runs. */
const SECONDS = Number(process.env.BENCH_SECONDS ?? (QUICK ? 2 : 5));
/** Connections of the HTTP scenarios (the gate's and the peers'). */
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64);
/** In-flight loops of the SDK scenarios (receipts). */
const SDK_LOOPS = 16;
/**
 * Accounts of debit_spread. 2 000 by default: creating 10 000 objects on one local workerd takes about
 * 160 s on this machine, past the bench's 3-minute bound; BENCH_SPREAD_ACCOUNTS=10000 runs the figure.
 */
const SPREAD_ACCOUNTS = Number(process.env.BENCH_SPREAD_ACCOUNTS ?? (QUICK ? 500 : 2_000));
const LOT_SIZES = QUICK ? [1, 100, 10_000] : [1, 100, 10_000, 100_000];
const HISTORY = QUICK ? 100_000 : 1_000_000;
const LOTS_SECONDS = QUICK ? 1 : 3;
const LOTS_CONNECTIONS = 16;
const BIG = 1_000_000_000;
const USAGE_BATCH = 1000;
/** Operations per in-object timing of ledger_parts, and debits of the storage scenario (per call: STORAGE_CALL). */
const PART_OPS = QUICK ? 500 : 2_000;
const STORAGE_DEBITS = QUICK ? 10_000 : 100_000;
const STORAGE_CALL = 10_000;

const round = (n, digits = 0) => (n === null || n === undefined ? null : Number(n.toFixed(digits)));
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/**
 * Runs `op` sequentially for `seconds`; returns ops/s. Every 100 ops it yields to the event loop: an op
 * that never waits on I/O (the verifier's synchronous node:crypto path) would otherwise starve this
 * process, which also drains wrangler dev's output pipe, and the stalled dev server drops connections.
 */
async function timed(seconds, op) {
  const start = performance.now();
  const end = start + seconds * 1000;
  let n = 0;
  while (performance.now() < end) {
    await op(n);
    n++;
    if (n % 100 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  return { ops: n, perSecond: n / ((performance.now() - start) / 1000) };
}

/** Runs `op` in `workers` parallel loops for `seconds`; counts results that return true. */
async function timedParallel(seconds, workers, op) {
  const start = performance.now();
  const end = start + seconds * 1000;
  let ok = 0;
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let i = 0; performance.now() < end; i++) if (await op(w, i)) ok++;
    }),
  );
  return { ok, perSecond: ok / ((performance.now() - start) / 1000) };
}

/** Runs `fn` over `items` with at most `limit` in flight. */
async function mapLimit(items, limit, fn) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

/** Full ES256 verifications/s of distinct tokens on one core. */
async function benchVerify(signing) {
  const { d: _d, ...pub } = signing;
  const key = await importJWK(signing, "ES256");
  const nowS = Math.floor(Date.now() / 1000);
  const tokens = [];
  for (let i = 0; i < 2000; i++) {
    tokens.push(
      await new SignJWT({ amt: BIG, unit: "credits" })
        .setProtectedHeader({ alg: "ES256", kid: signing.kid, typ: "JWT" })
        .setIssuer("credit-gate")
        .setSubject("bench")
        .setAudience("usage")
        .setJti(`r-${i}`)
        .setIssuedAt(nowS)
        .setExpirationTime(nowS + 3600)
        .sign(key),
    );
  }
  const cold = new ReceiptVerifier({ jwks: { keys: [pub] }, maxCachedTokens: 0 });
  await cold.verify(tokens[0]);
  const cpu0 = process.cpuUsage();
  const run = await timed(SECONDS, (i) => cold.verify(tokens[i % tokens.length]));
  const cpu = process.cpuUsage(cpu0);
  return { rps: round(run.perSecond), cpu_ms_per_req: round((cpu.user + cpu.system) / 1000 / run.ops, 3) };
}

/** The bytes of the Durable Objects' SQLite files under the gate's state dir. */
function doBytes(stateDir) {
  let total = 0;
  const walk = (dir) => {
    for (const name of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, name.name);
      if (name.isDirectory()) walk(path);
      else if (/\.sqlite(-wal)?$/.test(name.name) && dir.includes("AccountLedger")) total += statSync(path).size;
    }
  };
  try {
    walk(join(stateDir, "v3", "do"));
  } catch {
    return null;
  }
  return total;
}

function check(res, what) {
  if (res.non2xx > 0 || res.errors > 0 || res.ok === 0) {
    throw new Error(`${what}: ${res.non2xx} non-2xx and ${res.errors} errors of ${res.ok + res.non2xx} requests`);
  }
  return res;
}

const started = performance.now();
const phase = (what) => console.log(`  (${((performance.now() - started) / 1000).toFixed(0)} s) ${what}`);

async function main() {
  console.log(`Starting a private wrangler dev of the bench Worker${QUICK ? " (quick)" : ""}…`);
  const gate = await startLocalGate({ label: "bench", config: "bench/wrangler.toml" });
  const peers = [];
  const scenarios = {};
  const notes = {};
  try {
    const serverPids = () => groupPids(gate.child.pid);
    const admin = new CreditGateClient({ baseUrl: gate.url, token: gate.adminToken });
    const { key: gatewayKey } = await admin.createApiKey({ name: "bench", role: "gateway" });
    const auth = { authorization: `Bearer ${gatewayKey}` };
    // Seeding is not measured. Local workerd sometimes restarts the Worker under a burst of new objects
    // (503 "restarted mid-request", which asks for a retry): a fixture then retries, up to 5 times.
    const seed = async (id, body) => {
      for (let attempt = 1; ; attempt++) {
        const res = await fetch(`${gate.url}/__bench/seed/${id}`, { method: "POST", body: JSON.stringify(body) });
        if (res.status === 200) return res.json();
        const text = await res.text();
        if (res.status !== 503 || attempt === 5) throw new Error(`seed ${id}: ${res.status} ${text}`);
        await new Promise((r) => setTimeout(r, 250 * attempt));
      }
    };
    const debitsOf = (account) => ({
      url: `${gate.url}/v1/accounts/${account}/debits`,
      headers: auth,
      connections: CONNECTIONS,
      seconds: SECONDS,
      serverPids,
    });

    console.log("verify_offline…");
    scenarios.verify_offline = { ...(await benchVerify(gate.signing)), unit: "verifications/s" };

    console.log(`noop_do (${CONNECTIONS} connections)…`);
    await seed("bench-noop", { lots: 1, expiring_half: false, history: 0 });
    scenarios.noop_do = check(
      await drive({
        url: `${gate.url}/__bench/noop/bench-noop`,
        body: (i) => ({ debit_id: `n-${i}`, amount: 1 }),
        connections: CONNECTIONS,
        seconds: SECONDS,
        serverPids,
      }),
      "noop_do",
    );

    console.log("debit_hot (one account, 50 lots of mixed priority and expiry)…");
    const hot = "bench-hot";
    for (let i = 0; i < 50; i++) {
      const expires = i % 2 === 0 ? new Date(Date.now() + (10 + i) * 86_400_000).toISOString() : undefined;
      await admin.createGrant(hot, {
        amount: BIG,
        type: i % 3 === 0 ? "promotional" : "purchased",
        priority: 100 + (i % 5),
        ...(expires ? { expires_at: expires } : {}),
      });
    }
    const bytesBefore = doBytes(join(gate.dir, "state"));
    scenarios.debit_hot = check(
      await drive({ ...debitsOf(hot), body: (i) => ({ debit_id: `h-${i}`, amount: 1 }) }),
      "debit_hot",
    );
    const bytesAfter = doBytes(join(gate.dir, "state"));
    if (bytesBefore !== null && bytesAfter !== null) {
      notes.do_bytes_per_debit = round((bytesAfter - bytesBefore) / scenarios.debit_hot.ok);
      notes.do_bytes_debits_measured = scenarios.debit_hot.ok;
    }

    console.log(`debit_spread (${SPREAD_ACCOUNTS} accounts)…`);
    const spread = Array.from({ length: SPREAD_ACCOUNTS }, (_, i) => `bench-spread-${i}`);
    // One request per account: a faster fan-out inside the Worker makes local workerd restart (too many live objects).
    await mapLimit(spread, 32, (id) => seed(id, { lots: 1, expiring_half: false, history: 0 }));
    phase("seeded the spread accounts");
    scenarios.debit_spread = check(
      await drive({
        ...debitsOf("x"),
        request: (i) => ({
          path: `/v1/accounts/${spread[(i * 7919) % spread.length]}/debits`,
          body: { debit_id: `s-${i}`, amount: 1 },
        }),
      }),
      "debit_spread",
    );
    scenarios.debit_spread.accounts = SPREAD_ACCOUNTS;

    console.log(`receipts (receipts of 100, ${SDK_LOOPS} loops)…`);
    scenarios.receipts = await benchReceipts(gate, gatewayKey, admin, serverPids);

    for (const start of [startPostgresPeer, startRedisPeer]) {
      const peer = await start({ accounts: 1, balance: BIG });
      peers.push(peer);
      console.log(`${peer.name} (${CONNECTIONS} connections)…`);
      scenarios[peer.name] = check(
        await drive({
          url: `${peer.url}/debit`,
          body: (i) => ({ account_id: "acct-0", debit_id: `p-${i}`, amount: 1 }),
          connections: CONNECTIONS,
          seconds: SECONDS,
          serverPids: peer.cpuPids,
        }),
        peer.name,
      );
      await peer.stop();
      peers.pop();
    }

    console.log(`lots_scaling (${LOT_SIZES.join(", ")} live lots, half expiring; ${HISTORY} entries of history)…`);
    scenarios.lots_scaling = {};
    const cases = [...LOT_SIZES.map((n) => [`lots_${n}`, n, 0]), [`history_${HISTORY}`, 100, HISTORY]];
    for (const [name, lots, history] of cases) {
      const account = `bench-${name}`;
      await seed(account, { lots, expiring_half: true, history });
      phase(`seeded ${name}`);
      // A long seeding call can leave the object to be restarted: the probe retries until it answers.
      let one = null;
      let bytes = 0;
      for (let attempt = 0; attempt < 10; attempt++) {
        one = await fetch(`${gate.url}/v1/accounts/${account}/debits`, {
          method: "POST",
          headers: { ...auth, "content-type": "application/json" },
          body: JSON.stringify({ debit_id: "probe", amount: 1 }),
        });
        bytes = (await one.arrayBuffer()).byteLength;
        if (one.status === 200) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      if (one?.status !== 200) throw new Error(`${name}: the probe debit answered ${one?.status}`);
      const res = check(
        await drive({
          ...debitsOf(account),
          connections: LOTS_CONNECTIONS,
          seconds: LOTS_SECONDS,
          body: (i) => ({ debit_id: `l-${i}`, amount: 1 }),
        }),
        name,
      );
      scenarios.lots_scaling[name] = { ...res, response_bytes: bytes };
    }
    console.log(`ledger_parts (${PART_OPS} of each inside the object)…`);
    scenarios.ledger_parts = await benchParts(gate.url, hot);

    // Last: the tens of thousands of entries they write ship to D1 in the background on the same workerd.
    console.log("usage_batch (batches of 1 000 events, one in flight)…");
    scenarios.usage_batch = await benchUsage(gate.url, gatewayKey, admin, serverPids);
    console.log(`storage (${STORAGE_DEBITS} debits inside one object)…`);
    notes.storage = await benchStorage(gate.url, admin);
  } finally {
    for (const peer of peers) await peer.stop().catch(() => {});
    await gate.stop();
  }
  report(scenarios, notes, {
    elapsedS: (performance.now() - started) / 1000,
    seconds: SECONDS,
    connections: CONNECTIONS,
    quick: QUICK,
    history: HISTORY,
  });
}

/** One call of the bench Worker's in-object profile (bench/worker.ts): its answer and the wall time it took. */
async function profile(url, account, part, n) {
  const t0 = performance.now();
  const res = await fetch(`${url}/__bench/profile/${account}`, { method: "POST", body: JSON.stringify({ part, n }) });
  if (res.status !== 200) throw new Error(`profile ${part}: ${res.status} ${await res.text()}`);
  const body = await res.json();
  if (body.ok !== body.n) throw new Error(`profile ${part}: ${body.n - body.ok} of ${body.n} failed`);
  return { ...body, ms: performance.now() - t0 };
}

/**
 * µs per operation inside the hot account's object (its 50 lots), best of two rounds: the object runs
 * nothing else meanwhile, so wall time is its CPU. `rps` is whole debits per second on one object.
 */
async function benchParts(url, account) {
  const parts = ["debit", "plan", "seal", "outbox", "idempotency"];
  const us = {};
  for (let round = 0; round < 2; round++) {
    for (const part of parts) {
      const { ms } = await profile(url, account, part, PART_OPS);
      const perOp = (ms * 1000) / PART_OPS;
      us[part] = Math.min(us[part] ?? Number.POSITIVE_INFINITY, perOp);
    }
  }
  const out = Object.fromEntries(parts.map((p) => [`${p}_us`, round(us[p], 1)]));
  return { rps: round(1e6 / us.debit), unit: "debits/s in-object", ...out };
}

/** STORAGE_DEBITS debits through the real operation in one fresh object (50 lots): SQLite bytes per debit. */
async function benchStorage(url, admin) {
  const account = `bench-storage-${Date.now()}`;
  for (let i = 0; i < 50; i++) {
    await admin.createGrant(account, { amount: BIG, type: i % 3 === 0 ? "promotional" : "purchased", priority: i % 5 });
  }
  const before = await profile(url, account, "sizes", 0);
  for (let done = 0; done < STORAGE_DEBITS; done += STORAGE_CALL) {
    await profile(url, account, "debit", Math.min(STORAGE_CALL, STORAGE_DEBITS - done));
  }
  const after = await profile(url, account, "sizes", 0);
  const perDebit = (t) => round(((after.tables[t]?.bytes ?? 0) - (before.tables[t]?.bytes ?? 0)) / STORAGE_DEBITS);
  const tables = Object.fromEntries(
    Object.keys(after.tables)
      .filter((t) => perDebit(t) > 0)
      .map((t) => [t, perDebit(t)]),
  );
  return {
    debits: STORAGE_DEBITS,
    db_bytes_per_debit: round((after.db_bytes - before.db_bytes) / STORAGE_DEBITS),
    column_bytes_per_debit: tables,
  };
}

/** Batches of USAGE_BATCH events on one account, one in flight, for SECONDS; the ledger is checked after. */
async function benchUsage(url, token, admin, serverPids) {
  const account = `bench-usage-${Date.now()}`;
  await admin.createGrant(account, { amount: BIG, type: "purchased" });
  const batchMs = [];
  const meter = (await import("./load.mjs")).cpuMeter(serverPids);
  const run = await timed(SECONDS, async (n) => {
    const events = Array.from({ length: USAGE_BATCH }, (_, i) => ({
      event_id: `u-${n}-${i}`,
      account_id: account,
      amount: 1,
    }));
    const t0 = performance.now();
    const res = await fetch(`${url}/v1/usage`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ events }),
    });
    const body = await res.json();
    batchMs.push(performance.now() - t0);
    const refused = res.status === 200 ? body.results.filter((r) => r.status !== 200).length : USAGE_BATCH;
    if (refused > 0) throw new Error(`usage bench: ${refused} events refused (${res.status})`);
  });
  const cpuMs = meter();
  const balance = await admin.getBalance(account);
  if (BIG - balance.available !== run.ops * USAGE_BATCH) {
    throw new Error(`usage bench: ledger disagrees (${run.ops} batches, available ${balance.available})`);
  }
  batchMs.sort((a, b) => a - b);
  return {
    rps: round(run.perSecond * USAGE_BATCH),
    unit: "events/s",
    batches: run.ops,
    p50_ms: round(pct(batchMs, 50), 1),
    p99_ms: round(pct(batchMs, 99), 1),
    p999_ms: round(pct(batchMs, 99.9), 1),
    cpu_ms_per_req: round(cpuMs / (run.ops * USAGE_BATCH), 4),
  };
}

/** Requests admitted through ReceiptWallet + ReceiptVerifier with receipts of 100; zero overspend checked after. */
async function benchReceipts(gate, gatewayKey, admin, serverPids) {
  const client = new CreditGateClient({ baseUrl: gate.url, token: gatewayKey, maxAttempts: 1 });
  const account = `bench-rcpt-${Date.now()}`;
  await admin.createGrant(account, { amount: BIG, type: "purchased" });
  const wallet = new ReceiptWallet({ client, accountId: account, receiptAmount: 100, ttlSeconds: 300 });
  const verifier = new ReceiptVerifier({ gateUrl: gate.url });
  const meter = (await import("./load.mjs")).cpuMeter(serverPids);
  const lat = [];
  const run = await timedParallel(SECONDS, SDK_LOOPS, async () => {
    const t0 = performance.now();
    const s = await wallet.spend(1);
    const ok = s.admitted && (await verifier.consume(s.receipt, 1)).admitted;
    lat.push(performance.now() - t0);
    return ok;
  });
  await wallet.settle();
  const cpuMs = meter();
  const stats = wallet.getStats();
  const balance = await admin.getBalance(account);
  // Zero overspend: what was admitted is exactly what the ledger settled, and nothing stays held.
  if (stats.settledUsed !== stats.admitted || BIG - balance.available !== stats.admitted || balance.held !== 0) {
    throw new Error(`receipts bench: ledger disagrees ${JSON.stringify({ stats, balance })}`);
  }
  lat.sort((a, b) => a - b);
  return {
    rps: round(run.perSecond),
    unit: "admitted/s",
    gate_calls: stats.receipts,
    gate_calls_per_s: round(stats.receipts / SECONDS, 1),
    admitted: stats.admitted,
    p50_ms: round(pct(lat, 50), 3),
    p99_ms: round(pct(lat, 99), 3),
    p999_ms: round(pct(lat, 99.9), 3),
    cpu_ms_per_req: round(cpuMs / Math.max(1, stats.admitted), 4),
  };
}

const deadline = setTimeout(
  () => {
    console.error(`bench: still running after ${QUICK ? 90 : 360} s; stopping`);
    process.exit(1);
  },
  (QUICK ? 90 : 360) * 1000,
);
deadline.unref();

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
    process.exit(1);
  },
);
