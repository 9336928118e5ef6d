#!/usr/bin/env node
/**
 * `npm run demo:growth`: the credit lifecycle and growth features, seeded,
 * against a private local `wrangler dev` (fresh temp state: real Durable
 * Objects, local D1 and the local Queue) and a webhook receiver in this
 * process (a node http server on a free loopback port that checks every
 * Standard Webhooks signature).
 *
 * 1. A webhook subscribed to topup.requested, grant.activated, grant.redeemed.
 * 2. A campaign with two variants (signup_1000, 1 000 credits; trial_7d, 500
 *    expiring in 7 days; weights 50/50) and a referrer_grant of 250.
 * 3. REDEEMERS generated codes redeemed by as many accounts (the variant is
 *    the gate's hash of campaign and account, so a seed always splits the
 *    same way); seeded spending from most of them; every PURCHASE_EVERY-th
 *    buys credits afterwards (a conversion).
 * 4. A referral chain A → B → C: B redeems A's referral code, C redeems B's;
 *    B's first purchase rewards A, C's rewards B.
 * 5. A top-up rule on one account, a debit that leaves it below `below`, the
 *    topup.requested delivery awaited at the receiver, the awaiting grant
 *    activated, the grant.activated delivery awaited.
 * 6. Prints the campaign report (once D1 has caught up with the figures the
 *    script expects from its own calls), the chain's balances, the top-up's
 *    journey and every webhook delivery received. Exits 1 when a figure or
 *    a step does not come out as expected.
 *
 * Bounded: every wait polls at most WAIT_MS; the whole run at most
 * DEMO_TIMEOUT_S (default 300) seconds, after which it stops the receiver
 * and the gate and exits 1. Env: SEED (default 7), DEMO_TIMEOUT_S, KEEP=1
 * keeps the gate's temp dir. Prints one line `DEMO_JSON {...}` at the end.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";
import { mulberry32 } from "./lib/prng.mjs";
import { freePort, startLocalGate } from "./lib/wrangler.mjs";

const SEED = Number(process.env.SEED ?? 7);
const TIMEOUT_S = Number(process.env.DEMO_TIMEOUT_S ?? 300);
/** Accounts that redeem a generated code (A of the chain is one of them). */
const REDEEMERS = 40;
/** Every n-th redeemer buys credits after redeeming. */
const PURCHASE_EVERY = 4;
/** Longest any one wait polls (a delivery, a reward, the report catching up). */
const WAIT_MS = 90_000;
const POLL_MS = 250;
/** Concurrent requests while redeeming and spending. */
const PARALLEL = 8;
const EVENT_TYPES = ["topup.requested", "grant.activated", "grant.redeemed"];
/** The campaign's variants, in the order it declares them (the report serves them in this order). */
const VARIANTS = ["signup_1000", "trial_7d"];
/** The top-up rule: below this many credits, request this many. */
const TOPUP_BELOW = 200;
const TOPUP_AMOUNT = 1000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const random = mulberry32(SEED);

// ── the webhook receiver ──────────────────────────────────────────────────

/** The endpoint's secret, derived from the seed (the demo is reproducible; never a real secret). */
const SECRET = `whsec_${createHash("sha256").update(`demo-growth-${SEED}`).digest("base64")}`;

function verify(headers, body) {
  const key = Buffer.from(SECRET.slice("whsec_".length), "base64");
  const mac = createHmac("sha256", key)
    .update(`${headers["webhook-id"]}.${headers["webhook-timestamp"]}.${body}`)
    .digest();
  return String(headers["webhook-signature"] ?? "")
    .split(" ")
    .some((part) => {
      const [version, sig] = part.split(",");
      if (version !== "v1" || !sig) return false;
      const given = Buffer.from(sig, "base64");
      return given.length === mac.length && timingSafeEqual(given, mac);
    });
}

/** Every delivery the receiver got, in arrival order. */
const received = [];
/** A receiver request body is at most this large (the gate's alerts are small). */
const MAX_BODY_BYTES = 65_536;

const receiver = createServer((req, res) => {
  const chunks = [];
  let size = 0;
  req.on("data", (c) => {
    size += c.length;
    if (size <= MAX_BODY_BYTES) chunks.push(c);
  });
  req.on("end", () => {
    const body = Buffer.concat(chunks).toString("utf8");
    let event = null;
    try {
      event = JSON.parse(body);
    } catch {}
    received.push({
      at: new Date().toISOString(),
      id: req.headers["webhook-id"],
      verified: size <= MAX_BODY_BYTES && verify(req.headers, body),
      type: event?.type ?? null,
      data: event?.data ?? null,
    });
    res.writeHead(204).end();
  });
});
const receiverPort = await freePort();
await new Promise((r) => receiver.listen(receiverPort, "127.0.0.1", r));
const hookUrl = `http://127.0.0.1:${receiverPort}/hooks/demo-growth`;

// ── the gate ──────────────────────────────────────────────────────────────

let gate = null;
/** The one stop of the receiver and the gate: every caller (end, deadline, signal) awaits the same. */
let stopped = null;
function cleanup() {
  stopped ??= (async () => {
    receiver.close();
    receiver.closeAllConnections?.();
    if (gate) await gate.stop();
  })();
  return stopped;
}
const deadline = setTimeout(async () => {
  console.error(`demo:growth: still running after ${TIMEOUT_S} s; stopping`);
  await cleanup();
  process.exit(1);
}, TIMEOUT_S * 1000);
// Ctrl-C or a kill: stop the gate and the receiver too, never leave a wrangler dev behind.
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, async () => {
    console.error(`demo:growth: ${signal}; stopping`);
    clearTimeout(deadline);
    await cleanup();
    process.exit(130);
  });
}

const failures = [];
function check(ok, what) {
  if (!ok) {
    failures.push(what);
    console.error(`  ✗ ${what}`);
  }
}

async function call(method, path, body) {
  const res = await fetch(`${gate.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${gate.adminToken}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, json, text };
}

async function must(method, path, body, status = [200, 201]) {
  const r = await call(method, path, body);
  if (!status.includes(r.status)) throw new Error(`${method} ${path}: ${r.status} ${r.text}`);
  return r.json;
}

/** Polls `probe` until it returns a value other than undefined, at most WAIT_MS. */
async function waitFor(what, probe) {
  const until = Date.now() + WAIT_MS;
  while (Date.now() < until) {
    const v = await probe();
    if (v !== undefined) return v;
    await sleep(POLL_MS);
  }
  throw new Error(`timed out after ${WAIT_MS} ms waiting for ${what}`);
}

/** Runs `fn` over `items`, PARALLEL at a time, in order of the items. */
async function inBatches(items, fn) {
  const out = [];
  for (let i = 0; i < items.length; i += PARALLEL) {
    out.push(...(await Promise.all(items.slice(i, i + PARALLEL).map(fn))));
  }
  return out;
}

const pad = (s, n) => String(s).padEnd(n);
const padL = (s, n) => String(s).padStart(n);
const balanceOf = async (a) => must("GET", `/v1/accounts/${a}/balance`);

async function main() {
  gate = await startLocalGate({ label: "demo-growth", keep: process.env.KEEP === "1" });
  console.log(`gate ${gate.url} (state in ${gate.dir}); receiver ${hookUrl}; seed ${SEED}`);
  const tag = `s${SEED}`;
  const campaignId = `spring-${tag}`;
  const acct = (name) => `demo-${tag}-${name}`;

  // 1. The webhook.
  const hook = await must("POST", "/v1/webhooks", { url: hookUrl, event_types: EVENT_TYPES, secret: SECRET });

  // 2. The campaign.
  await must("PUT", `/v1/campaigns/${campaignId}`, {
    name: "Spring growth test",
    grant: { amount: 1000, type: "promotional" },
    variants: [
      { variant: VARIANTS[0], weight: 50, grant: { amount: 1000, type: "promotional" } },
      { variant: VARIANTS[1], weight: 50, grant: { amount: 500, type: "promotional", expires_in_days: 7 } },
    ],
    referrer_grant: { amount: 250, type: "promotional" },
  });
  const { codes } = await must("POST", `/v1/campaigns/${campaignId}/codes`, { count: REDEEMERS });
  check(codes.length === REDEEMERS, `${REDEEMERS} codes generated (got ${codes.length})`);

  // 3. Redemptions, spending, purchases. Expected figures are kept from the gate's own answers.
  const expected = new Map(); // variant → {redeemed, issued, consumed, converted}
  const tally = (variant) => {
    if (!expected.has(variant)) expected.set(variant, { redeemed: 0, issued: 0, consumed: 0, converted: 0 });
    return expected.get(variant);
  };
  const redeemers = Array.from({ length: REDEEMERS }, (_, i) =>
    i === 0 ? acct("ref-a") : acct(`u${String(i).padStart(2, "0")}`),
  );
  const plans = redeemers.map((account, i) => ({
    account,
    code: codes[i],
    spend: random() < 0.75 ? 1 + Math.floor(random() * 400) : 0,
    buys: (i + 1) % PURCHASE_EVERY === 0,
  }));
  const redeem = async (account, code) => {
    await must("PUT", `/v1/accounts/${account}`, { name: account });
    const r = await must("POST", "/v1/redemptions", { code, account_id: account });
    const t = tally(r.variant);
    t.redeemed += 1;
    t.issued += r.grant.amount;
    return r;
  };
  const redemptions = await inBatches(plans, async (p) => {
    const r = await redeem(p.account, p.code);
    // Spending below the lot's amount, before any purchase: drawn from the campaign lot alone.
    if (p.spend > 0) {
      await must("POST", `/v1/accounts/${p.account}/debits`, { debit_id: `spend-${p.account}`, amount: p.spend });
      tally(r.variant).consumed += p.spend;
    }
    return r;
  });
  const variantOf = new Map(plans.map((p, i) => [p.account, redemptions[i].variant]));
  const purchase = async (account, amount, id) => {
    await must("POST", `/v1/accounts/${account}/grants`, {
      grant_id: id,
      type: "purchased",
      amount,
      cost_basis: { amount: amount * 2, currency: "USD" },
    });
  };
  await inBatches(
    plans.filter((p) => p.buys),
    async (p) => {
      await purchase(p.account, 2000, `buy-${p.account}`);
      tally(variantOf.get(p.account)).converted += 1;
    },
  );
  console.log(
    `redeemed ${REDEEMERS} codes; ${plans.filter((p) => p.spend).length} accounts spent; ${plans.filter((p) => p.buys).length} bought`,
  );

  // 4. The referral chain A → B → C.
  const [a, b, c] = [acct("ref-a"), acct("ref-b"), acct("ref-c")];
  const codeA = (await must("POST", `/v1/accounts/${a}/referral-code`, { campaign_id: campaignId })).code;
  const rb = await redeem(b, codeA);
  const codeB = (await must("POST", `/v1/accounts/${b}/referral-code`, { campaign_id: campaignId })).code;
  const rc = await redeem(c, codeB);
  variantOf.set(b, rb.variant);
  variantOf.set(c, rc.variant);
  await purchase(b, 1500, `buy-${b}`);
  tally(rb.variant).converted += 1;
  await purchase(c, 1500, `buy-${c}`);
  tally(rc.variant).converted += 1;
  const rewardOf = (referrer) =>
    waitFor(`the referral reward on ${referrer}`, async () => {
      const { grants } = await must("GET", `/v1/accounts/${referrer}/grants`);
      return grants.find((g) => g.grant_id.startsWith(`referral.${campaignId}.`)) ?? undefined;
    });
  const rewardA = await rewardOf(a);
  const rewardB = await rewardOf(b);
  check(rewardA.amount === 250 && rewardA.grant_id.endsWith(`.${b}`), `A rewarded 250 for B (${rewardA.grant_id})`);
  check(rewardB.amount === 250 && rewardB.grant_id.endsWith(`.${c}`), `B rewarded 250 for C (${rewardB.grant_id})`);
  check(
    !(await must("GET", `/v1/accounts/${c}/grants`)).grants.some((g) => g.grant_id.startsWith("referral.")),
    "C, referring nobody, has no reward",
  );

  // 5. The top-up.
  const t = acct("topup");
  await must("POST", `/v1/accounts/${t}/grants`, {
    grant_id: "initial",
    type: "purchased",
    amount: 1000,
    cost_basis: { amount: 1000, currency: "USD" },
  });
  await must("PUT", `/v1/accounts/${t}/top-up`, {
    below: TOPUP_BELOW,
    amount: TOPUP_AMOUNT,
    max_per_month: 3000,
    grant: { type: "purchased", cost_basis: { amount: 1000, currency: "USD" } },
  });
  const debitedAt = new Date().toISOString();
  await must("POST", `/v1/accounts/${t}/debits`, { debit_id: "big-job", amount: 850 });
  const requested = await waitFor("the topup.requested delivery", async () =>
    received.find((r) => r.type === "topup.requested" && r.data?.account_id === t),
  );
  const awaiting = await balanceOf(t);
  const topupGrant = requested.data.grant_id;
  check(
    typeof topupGrant === "string" && topupGrant.length > 0,
    `topup.requested names a grant_id (got ${JSON.stringify(topupGrant)})`,
  );
  check(
    requested.data.amount === TOPUP_AMOUNT,
    `topup.requested amount ${TOPUP_AMOUNT} (got ${requested.data.amount})`,
  );
  check(requested.data.below === TOPUP_BELOW, `topup.requested below ${TOPUP_BELOW} (got ${requested.data.below})`);
  const waiting = await call("GET", `/v1/accounts/${t}/grants/${encodeURIComponent(String(topupGrant))}`);
  check(
    waiting.status === 200 && waiting.json?.status === "awaiting_payment" && waiting.json?.amount === TOPUP_AMOUNT,
    `the requested grant ${topupGrant} awaits payment for ${TOPUP_AMOUNT} (got ${waiting.status} ${waiting.text})`,
  );
  const paymentRef = `demo-payment-${SEED}`;
  const activated = await must("POST", `/v1/accounts/${t}/grants/${topupGrant}/activate`, {
    payment_ref: paymentRef,
  });
  const activatedAt = new Date().toISOString();
  const activation = await waitFor("the grant.activated delivery", async () =>
    received.find((r) => r.type === "grant.activated" && r.data?.account_id === t),
  );
  check(
    activation.data?.grant_id === topupGrant,
    `grant.activated names ${topupGrant} (got ${activation.data?.grant_id})`,
  );
  check(
    activation.data?.payment_ref === paymentRef,
    `grant.activated payment_ref ${paymentRef} (got ${activation.data?.payment_ref})`,
  );
  const after = await balanceOf(t);
  check(after.available === 1150, `top-up account available 150 + 1 000 = 1 150 (got ${after.available})`);

  // 6. The report, once D1 has caught up with what the script did.
  // Nothing expires in a run of minutes (trial lots last 7 days): expired 0, breakage 0. The rates
  // are floor(part × 10 000 / whole), from the script's own counts.
  const want = (v) => {
    const w = { redeemed: 0, issued: 0, consumed: 0, converted: 0, ...expected.get(v) };
    return {
      ...w,
      expired: 0,
      conversion_bps: w.redeemed === 0 ? 0 : Math.floor((w.converted * 10_000) / w.redeemed),
      breakage_bps: 0,
    };
  };
  const FIGURES = ["redeemed", "issued", "consumed", "expired", "converted", "conversion_bps", "breakage_bps"];
  const matches = (rep) =>
    Array.isArray(rep?.variants) &&
    rep.variants.length === VARIANTS.length &&
    rep.variants.every((v, i) => v.variant === VARIANTS[i]) &&
    rep.variants.every((v) => {
      const w = want(v.variant);
      return FIGURES.every((f) => v[f] === w[f]);
    });
  let report = null;
  try {
    report = await waitFor("the campaign report to catch up (outbox → D1)", async () => {
      const r = await call("GET", `/v1/reports/campaigns/${campaignId}`);
      return r.status === 200 && matches(r.json) ? r.json : undefined;
    });
  } catch (e) {
    report = (await call("GET", `/v1/reports/campaigns/${campaignId}`)).json;
    check(
      false,
      `${e.message}; last report: ${JSON.stringify(report)}; expected ${JSON.stringify(VARIANTS.map((v) => ({ variant: v, ...want(v) })))}`,
    );
  }
  const csv = await fetch(`${gate.url}/v1/reports/campaigns/${campaignId}?format=csv`, {
    headers: { authorization: `Bearer ${gate.adminToken}` },
  }).then((r) => r.text());

  // ── print ──
  console.log(`\n== campaign report ${campaignId} (GET /v1/reports/campaigns/${campaignId}) ==`);
  console.log(
    [
      pad("variant", 14),
      ...["redeemed", "issued", "consumed", "expired", "converted", "conv_bps", "break_bps"].map((h) => padL(h, 10)),
    ].join(""),
  );
  for (const v of report?.variants ?? []) {
    console.log(
      [
        pad(v.variant, 14),
        ...[v.redeemed, v.issued, v.consumed, v.expired, v.converted, v.conversion_bps, v.breakage_bps].map((x) =>
          padL(x, 10),
        ),
      ].join(""),
    );
  }
  console.log("(trial_7d lots expire 7 days after redemption: a run of minutes shows no breakage yet)");
  console.log(`\nCSV:\n${csv.trim()}`);

  console.log("\n== referral chain A → B → C ==");
  for (const [name, id, referee] of [
    ["A", a, b],
    ["B", b, c],
    ["C", c, null],
  ]) {
    const bal = await balanceOf(id);
    const { grants } = await must("GET", `/v1/accounts/${id}/grants`);
    console.log(
      `${name} ${pad(id, 20)} variant ${pad(variantOf.get(id), 12)} available ${padL(bal.available, 6)}  lots: ${grants.map((g) => `${g.grant_id}=${g.amount}`).join(", ")}${referee ? `  (rewarded for ${referee})` : ""}`,
    );
  }

  console.log(`\n== top-up journey on ${t} ==`);
  console.log(`debit 850 at ${debitedAt}: available 1 000 → 150, below ${TOPUP_BELOW}`);
  console.log(
    `requested  grant ${topupGrant} of ${requested.data.amount}, awaiting payment (balance awaiting_payment: ${JSON.stringify(awaiting.awaiting_payment ?? null)})`,
  );
  console.log(
    `delivered  topup.requested at ${requested.at} (webhook-id ${requested.id}, signature ${requested.verified ? "ok" : "BAD"})`,
  );
  console.log(
    `activated  at ${activatedAt} with payment_ref ${activated.grant?.payment_ref ?? paymentRef}; grant.activated delivered at ${activation.at} (payment_ref ${activation.data?.payment_ref})`,
  );
  console.log(`balance now: available ${after.available}`);

  // Every redemption (REDEEMERS codes, then B's and C's referral codes) raised one grant.redeemed:
  // exactly that many distinct deliveries (webhook-id), however often one was retried.
  const redeemedIds = () => new Set(received.filter((r) => r.type === "grant.redeemed").map((r) => r.id));
  await waitFor("a grant.redeemed delivery per redemption", async () =>
    redeemedIds().size >= REDEEMERS + 2 ? true : undefined,
  ).catch(() => false);
  const redeemedCount = redeemedIds().size;
  check(redeemedCount === REDEEMERS + 2, `${REDEEMERS + 2} distinct grant.redeemed deliveries (got ${redeemedCount})`);

  console.log(`\n== webhook deliveries received (${received.length}) ==`);
  const counts = {};
  for (const r of received) counts[r.type] = (counts[r.type] ?? 0) + 1;
  console.log(
    Object.entries(counts)
      .map(([k, n]) => `${k}: ${n}`)
      .join(", "),
  );
  for (const r of received
    .filter((x) => x.type !== "grant.redeemed")
    .concat(received.filter((x) => x.type === "grant.redeemed").slice(0, 3))) {
    const d = r.data ?? {};
    console.log(
      `${r.at} ${pad(r.type, 16)} ${pad(d.account_id, 20)} ${pad(d.grant_id, 24)} ${d.variant ? `variant ${d.variant} ` : ""}sig ${r.verified ? "ok" : "BAD"}`,
    );
  }
  if (counts["grant.redeemed"] > 3) console.log(`… and ${counts["grant.redeemed"] - 3} more grant.redeemed`);
  check(
    received.every((r) => r.verified),
    "every delivery's signature verifies",
  );
  const served = await must("GET", `/v1/webhooks/${hook.id}/deliveries`);
  console.log(`GET /v1/webhooks/${hook.id}/deliveries lists ${served.deliveries?.length ?? 0} (one page)`);

  console.log(
    `DEMO_JSON ${JSON.stringify({
      seed: SEED,
      campaign_id: campaignId,
      report,
      chain: { a, b, c, reward_a: rewardA.grant_id, reward_b: rewardB.grant_id },
      topup: { account: t, grant_id: topupGrant, requested_at: requested.at, activated_at: activatedAt },
      deliveries: counts,
      grant_redeemed_distinct: redeemedCount,
      failures,
    })}`,
  );
}

let code = 0;
try {
  await main();
  if (failures.length) {
    console.error(`demo:growth: ${failures.length} check(s) failed`);
    code = 1;
  }
} catch (e) {
  console.error(`demo:growth failed: ${e instanceof Error ? e.stack : String(e)}`);
  code = 1;
} finally {
  clearTimeout(deadline);
  await cleanup();
}
process.exit(code);
