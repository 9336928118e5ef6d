#!/usr/bin/env node
/**
 * `npm run bench`: measures the gate on this machine against a real local
 * `wrangler dev` (fresh state and secrets in a temp dir, a free port — the
 * checkout's .dev.vars and .wrangler/state are never touched).
 *
 * Scenarios:
 *   verify.cold     ReceiptVerifier.verify() on distinct tokens: a full ES256 check each (one core)
 *   verify.warm     ReceiptVerifier.consume() of a token already verified (the hot path)
 *   debit.latency   sequential debits, one account: p50 / p99
 *   debit.hot       admitted requests/s, one hot account, a debit per request (C in flight)
 *   receipts.hot    admitted requests/s, one hot account, receipts of 100 (ReceiptWallet +
 *                   ReceiptVerifier in process; one gate call per 100 requests)
 *   debit.many      debits/s over C accounts, one in flight each
 *   usage.batch     usage events/s, one account, batches of 1 000 (POST /v1/usage, one in flight):
 *                   one Durable Object call per batch; p50 of a batch's round trip
 * Prints a table and one line `BENCH_JSON {...}`.
 *
 * Env: BENCH_SECONDS (default 5) per timed scenario, BENCH_CONCURRENCY (default 16).
 */
// One libuv thread: WebCrypto jobs then run on one core, as the verify figure claims.
process.env.UV_THREADPOOL_SIZE = "1";

import os from "node:os";
import { importJWK, SignJWT } from "jose";
import { register } from "tsx/esm/api";
import { startLocalGate } from "./lib/wrangler.mjs";

register();
const { CreditGateClient, ReceiptVerifier, ReceiptWallet } = await import("../src/sdk/index.ts");

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const BIG = 1_000_000_000;

const round = (n, digits = 0) => Number(n.toFixed(digits));
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/** Runs `op` sequentially for `seconds`; returns ops/s. */
async function timed(seconds, op) {
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  let n = 0;
  while (performance.now() < end) {
    await op(n);
    n++;
  }
  return { ops: n, perSecond: n / ((performance.now() - start) / 1000) };
}

/** Runs `op` in `workers` parallel loops for `seconds`; counts results that return true. */
async function timedParallel(seconds, workers, op) {
  const start = performance.now();
  const end = start + seconds * 1000;
  let ok = 0;
  let refused = 0;
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let i = 0; performance.now() < end; i++) {
        if (await op(w, i)) ok++;
        else refused++;
      }
    }),
  );
  const elapsedS = (performance.now() - start) / 1000;
  return { ok, refused, perSecond: ok / elapsedS, elapsedS };
}

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
  await cold.verify(tokens[0]); // warm up the imported key
  const coldRun = await timed(SECONDS, (i) => cold.verify(tokens[i % tokens.length]));
  const warm = new ReceiptVerifier({ jwks: { keys: [pub] } });
  const hot = tokens[0];
  const warmRun = await timed(SECONDS, async () => {
    const a = await warm.consume(hot, 1);
    if (!a.admitted) throw new Error(`warm consume refused: ${a.reason}`);
  });
  return { cold: coldRun.perSecond, warm: warmRun.perSecond };
}

/** Batches of USAGE_BATCH events on one account, one at a time, for SECONDS; the ledger is checked after. */
const USAGE_BATCH = 1000;
async function benchUsage(url, token, admin) {
  const account = `bench-usage-${Date.now()}`;
  await admin.createGrant(account, { amount: BIG, type: "purchased" });
  const batchMs = [];
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
  const balance = await admin.getBalance(account);
  if (BIG - balance.available !== run.ops * USAGE_BATCH) {
    throw new Error(`usage bench: ledger disagrees (${run.ops} batches, available ${balance.available})`);
  }
  batchMs.sort((a, b) => a - b);
  return { eventsPerSecond: run.perSecond * USAGE_BATCH, p50Ms: pct(batchMs, 50) };
}

/**
 * A child with a budget and no lots of its own: every debit of 1 draws its
 * shortfall from the parent (a second Durable Object) before it is applied.
 * Sequential, like the plain latency run; the ledgers are checked after.
 */
async function benchBudgetDraw(url, adminToken, admin, client) {
  const call = async (method, path, body) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.status >= 300) throw new Error(`budget bench: ${method} ${path} ${res.status} ${await res.text()}`);
    return res.json();
  };
  const parent = `bench-org-${Date.now()}`;
  const child = `${parent}-dept`;
  await admin.createGrant(parent, { amount: BIG, type: "purchased" });
  // The parent must reach the D1 directory (its outbox) before a child can name it.
  for (let i = 0; ; i++) {
    const res = await fetch(`${url}/v1/accounts/${child}`, {
      method: "PUT",
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ parent_id: parent }),
    });
    if (res.status < 300) break;
    if (i > 100) throw new Error(`budget bench: child not created: ${res.status} ${await res.text()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await call("PUT", `/v1/accounts/${child}/budget`, { period: "month", limit: BIG });
  for (let i = 0; i < 20; i++) await client.debit(child, { amount: 1 }); // warm up
  const lat = [];
  for (let i = 0; i < 300; i++) {
    const t0 = performance.now();
    await client.debit(child, { amount: 1 });
    lat.push(performance.now() - t0);
  }
  const [p, c] = [await admin.getBalance(parent), await admin.getBalance(child)];
  if (BIG - p.available !== 320 || c.available !== 0) {
    throw new Error(`budget bench: ledgers disagree (parent ${p.available}, child ${c.available})`);
  }
  lat.sort((a, b) => a - b);
  return { p50: pct(lat, 50), p99: pct(lat, 99) };
}

async function main() {
  console.log("Starting a private wrangler dev…");
  const gate = await startLocalGate({ label: "bench" });
  try {
    const admin = new CreditGateClient({ baseUrl: gate.url, token: gate.adminToken });
    const { key: gatewayKey } = await admin.createApiKey({ name: "bench", role: "gateway" });
    const client = new CreditGateClient({ baseUrl: gate.url, token: gatewayKey, maxAttempts: 1 });
    const results = {};

    console.log(`verify (${SECONDS} s each)…`);
    const verify = await benchVerify(gate.signing);
    results.verify_cold_per_s = round(verify.cold);
    results.verify_warm_per_s = round(verify.warm);

    console.log("debit latency…");
    const latAccount = `bench-lat-${Date.now()}`;
    await admin.createGrant(latAccount, { amount: BIG, type: "purchased" });
    for (let i = 0; i < 50; i++) await client.debit(latAccount, { amount: 1 }); // warm up
    const lat = [];
    for (let i = 0; i < 500; i++) {
      const t0 = performance.now();
      await client.debit(latAccount, { amount: 1 });
      lat.push(performance.now() - t0);
    }
    lat.sort((a, b) => a - b);
    results.debit_p50_ms = round(pct(lat, 50), 2);
    results.debit_p99_ms = round(pct(lat, 99), 2);

    console.log("debit latency of a budgeted child that draws each debit from its parent…");
    const draw = await benchBudgetDraw(gate.url, gate.adminToken, admin, client);
    results.debit_drawing_p50_ms = round(draw.p50, 2);
    results.debit_drawing_p99_ms = round(draw.p99, 2);

    console.log(`one hot account, a debit per request (${CONCURRENCY} in flight)…`);
    const hot = `bench-hot-${Date.now()}`;
    await admin.createGrant(hot, { amount: BIG, type: "purchased" });
    const debitHot = await timedParallel(SECONDS, CONCURRENCY, async () => {
      await client.debit(hot, { amount: 1 });
      return true;
    });
    results.debit_hot_admitted_per_s = round(debitHot.perSecond);

    console.log(`one hot account, receipts of 100 (${CONCURRENCY} in flight)…`);
    const hotR = `bench-rcpt-${Date.now()}`;
    await admin.createGrant(hotR, { amount: BIG, type: "purchased" });
    const wallet = new ReceiptWallet({ client, accountId: hotR, receiptAmount: 100, ttlSeconds: 300 });
    const verifier = new ReceiptVerifier({ gateUrl: gate.url });
    const receiptHot = await timedParallel(SECONDS, CONCURRENCY, async () => {
      const s = await wallet.spend(1);
      if (!s.admitted) return false;
      return (await verifier.consume(s.receipt, 1)).admitted;
    });
    await wallet.settle();
    const stats = wallet.getStats();
    const balance = await admin.getBalance(hotR);
    if (stats.settledUsed !== stats.admitted || BIG - balance.available !== stats.admitted || balance.held !== 0) {
      throw new Error(`receipts bench: ledger disagrees ${JSON.stringify({ stats, balance })}`);
    }
    results.receipts_hot_admitted_per_s = round(receiptHot.perSecond);
    results.receipts_gate_calls = stats.receipts;
    results.receipts_admitted = stats.admitted;

    console.log(`${CONCURRENCY} accounts, one debit in flight each…`);
    const many = Array.from({ length: CONCURRENCY }, (_, i) => `bench-many-${Date.now()}-${i}`);
    for (const a of many) await admin.createGrant(a, { amount: BIG, type: "purchased" });
    const debitMany = await timedParallel(SECONDS, CONCURRENCY, async (w) => {
      await client.debit(many[w], { amount: 1 });
      return true;
    });
    results.debit_many_per_s = round(debitMany.perSecond);

    // Last: its tens of thousands of entries ship to D1 in the background, on the same local workerd.
    console.log("one account, batches of 1 000 usage events, one batch in flight…");
    const usage = await benchUsage(gate.url, gatewayKey, admin);
    results.usage_batch_events_per_s = round(usage.eventsPerSecond);
    results.usage_batch_p50_ms = round(usage.p50Ms, 1);

    const cpus = os.cpus();
    const machine = {
      cpu: cpus[0]?.model ?? "unknown",
      cores: cpus.length,
      node: process.version,
      os: `${os.platform()} ${os.release()}`,
      seconds_per_scenario: SECONDS,
      concurrency: CONCURRENCY,
    };
    const rows = [
      ["offline receipt verifications/s, one core (full ES256 check)", results.verify_cold_per_s],
      ["offline receipt admissions/s, one core (token already verified)", results.verify_warm_per_s],
      ["debit latency p50 / p99 (ms), one account, sequential", `${results.debit_p50_ms} / ${results.debit_p99_ms}`],
      [
        "debit latency p50 / p99 (ms), budgeted child drawing from its parent",
        `${results.debit_drawing_p50_ms} / ${results.debit_drawing_p99_ms}`,
      ],
      [
        `admitted req/s, one hot account, debit per request (${CONCURRENCY} in flight)`,
        results.debit_hot_admitted_per_s,
      ],
      [
        `admitted req/s, one hot account, receipts of 100 (${CONCURRENCY} in flight)`,
        results.receipts_hot_admitted_per_s,
      ],
      [`debits/s, ${CONCURRENCY} accounts`, results.debit_many_per_s],
      [
        "usage events/s, one account, batches of 1 000 (p50 ms per batch)",
        `${results.usage_batch_events_per_s} (${results.usage_batch_p50_ms})`,
      ],
    ];
    const width = Math.max(...rows.map((r) => r[0].length));
    console.log(`\n${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, ${machine.os}; local wrangler dev`);
    console.log(`${"scenario".padEnd(width)}  result`);
    console.log(`${"-".repeat(width)}  ------`);
    for (const [name, value] of rows) console.log(`${name.padEnd(width)}  ${value}`);
    console.log(
      `(receipts: ${results.receipts_admitted} admitted with ${results.receipts_gate_calls} receipt calls; ledger checked after settlement)`,
    );
    console.log(`BENCH_JSON ${JSON.stringify({ machine, results })}`);
  } finally {
    await gate.stop();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
    process.exit(1);
  },
);
