#!/usr/bin/env node
/**
 * `npm run seed:finance`: seeds a private local gate with a finance history
 * and times the reports a finance team closes a month from.
 *
 * Each of SEED_ACCOUNTS accounts (default 1 000) gets a purchased lot with a
 * cost basis (and tax), a promotional lot, a compensatory lot, and debits
 * until it holds about 100 entries; every 10th account refunds part of its
 * purchase and every 20th has an invoice that is then voided. Then it waits
 * for every outbox to reach D1 and fetches, as CSV, this month's revenue
 * journal, the liability now, and credit activity by type, printing each
 * with the time it took and one `SEED_JSON {...}` line.
 *
 * Env: SEED_ACCOUNTS, SEED_CONCURRENCY (default 16). Against a gate already
 * running: CG=<url> TOKEN=<admin token> (else a private wrangler dev is started).
 */
import { startLocalGate } from "./lib/wrangler.mjs";

const ACCOUNTS = Number(process.env.SEED_ACCOUNTS ?? 1000);
const CONCURRENCY = Number(process.env.SEED_CONCURRENCY ?? 16);
const DEBITS_PER_ACCOUNT = 94;

const gate = process.env.CG && process.env.TOKEN ? null : await startLocalGate({ label: "seed" });
const base = process.env.CG ?? gate.url;
const token = process.env.TOKEN ?? gate.adminToken;

async function api(method, path, body) {
  for (let attempt = 0; attempt < 5; attempt++) {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    if (res.status < 500) return { status: res.status, text, headers: res.headers };
    await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
  }
  throw new Error(`${method} ${path}: still failing after 5 tries`);
}

async function must(method, path, body) {
  const res = await api(method, path, body);
  if (res.status >= 400) throw new Error(`${method} ${path}: ${res.status} ${res.text}`);
  return res;
}

async function seedAccount(i) {
  const a = `fin-${String(i).padStart(5, "0")}`;
  const g = (body) => must("POST", `/v1/accounts/${a}/grants`, body);
  await g({
    grant_id: "buy-1",
    amount: 5_000,
    type: "purchased",
    priority: 2,
    source: "stripe",
    cost_basis: { amount: 4_999, currency: "USD", tax: { amount: 950, jurisdiction: i % 2 ? "DE" : "FR" } },
  });
  await g({
    grant_id: "welcome",
    amount: 200,
    type: "promotional",
    priority: 0,
    source: "marketing",
    campaign: "spring",
  });
  await g({ grant_id: "sorry", amount: 50, type: "compensatory", priority: 1, source: "support", reason: "outage" });
  for (let d = 0; d < DEBITS_PER_ACCOUNT; d++) {
    const res = await api("POST", `/v1/accounts/${a}/debits`, { debit_id: `d-${d}`, amount: 1 + ((i + d) % 40) });
    if (res.status !== 200 && res.status !== 402) throw new Error(`debit ${a}/${d}: ${res.status} ${res.text}`);
  }
  if (i % 10 === 0)
    await api("POST", `/v1/accounts/${a}/grants/buy-1/refund`, { refund_id: "r-1", amount: 100, reason: "seed" });
  if (i % 20 === 0) {
    await must("POST", `/v1/accounts/${a}/invoices`, {
      invoice_id: "inv-1",
      lines: [{ description: "seed", amount: 30 }],
    });
    await must("POST", `/v1/accounts/${a}/invoices/inv-1/void`, { reason: "seed" });
  }
}

async function timedGet(path) {
  const started = performance.now();
  const res = await must("GET", path);
  return { ms: Math.round(performance.now() - started), text: res.text };
}

try {
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < ACCOUNTS) await seedAccount(next++);
    }),
  );
  const seedSeconds = Math.round((performance.now() - started) / 1000);
  // Each account's alarm ships its outbox 250 ms after its last write; the cron re-drives any that lag.
  await new Promise((r) => setTimeout(r, 3000));
  await api("GET", "/cdn-cgi/handler/scheduled");
  const now = new Date();
  const from = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)).toISOString();
  const to = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)).toISOString();
  const revenue = await timedGet(`/v1/reports/revenue?currency=USD&from=${from}&to=${to}&period=month&format=csv`);
  const liability = await timedGet("/v1/reports/liability?unit=credits&format=csv");
  const credits = await timedGet(`/v1/reports/credits?group_by=type&from=${from}&to=${to}&period=month&format=csv`);
  console.log(`Seeded ${ACCOUNTS} accounts in ${seedSeconds} s.\n`);
  console.log(`GET /v1/reports/revenue (CSV, ${revenue.ms} ms)\n${revenue.text}`);
  console.log(`GET /v1/reports/liability (CSV, ${liability.ms} ms)\n${liability.text}`);
  console.log(`GET /v1/reports/credits?group_by=type (CSV, ${credits.ms} ms)\n${credits.text}`);
  console.log(
    `SEED_JSON ${JSON.stringify({ accounts: ACCOUNTS, seed_seconds: seedSeconds, revenue_ms: revenue.ms, liability_ms: liability.ms, credits_ms: credits.ms })}`,
  );
} finally {
  await gate?.stop();
}
