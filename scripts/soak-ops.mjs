/**
 * The soak's operations on one account (scripts/soak.mjs): each builds one
 * request, sends it through `perform` (retried with the same id and body
 * until the gate decides; sometimes sent twice at once), and applies the
 * answer to the model, checking it on the way (scripts/soak-model.mjs).
 * Operations over several accounts, voids, refunds, invoices and replays are
 * in scripts/soak-ops-more.mjs.
 */
import { same } from "./soak-http.mjs";
import { checkBalance, observedChange, PENDING_MAX } from "./soak-model.mjs";

/** Share of requests sent twice at once (same id, same body: one effect, two equal answers). */
export const DUPLICATE_SHARE = 0.08;
/** Share of debits sized past what the account holds (expected 402). */
export const SHORT_SHARE = 0.2;
/** Holds outlive the run: the soak closes them itself, or leaves them open. */
export const HOLD_TTL_S = 7_200;
/** Receipts: the longest the gate allows; a 10-minute run never reaches the settle grace. */
export const RECEIPT_TTL_S = 3_600;
/** Usage events a model remembers per account (to send some again). */
const EVENTS_KEPT = 50;

export const iso = (ms) => new Date(ms).toISOString();
export const sumApplied = (applied) => (applied ?? []).reduce((s, x) => s + x.amount, 0);

/**
 * Sends `req` ({kind, method, path, body, apply, dup?, remember?}) for the
 * accounts `accts` (locked by the caller) and applies the answer. No
 * definitive answer within the send bounds: the accounts are set aside with
 * the request, which the end sends again once faults are off.
 */
export async function perform(ctx, accts, req) {
  const { client, check, rng, stats } = ctx;
  const t0 = Date.now();
  let r;
  if (req.dup !== false && rng() < DUPLICATE_SHARE) {
    stats.duplicates++;
    const [x, y] = await Promise.all([
      client.send(req.method, req.path, req.body),
      client.send(req.method, req.path, req.body),
    ]);
    if (x && y) {
      const who = accts[0].id;
      check.expect(x.status === y.status, who, `${req.kind}: duplicates at once answered ${x.status} and ${y.status}`);
      if (x.status < 300 && y.status < 300) {
        check.expect(same(x.json, y.json), who, `${req.kind}: duplicates at once answered different bodies`);
      }
    }
    r = x ?? y;
  } else {
    r = await client.send(req.method, req.path, req.body);
  }
  if (!r) {
    for (const a of accts) a.unresolved = req;
    ctx.unresolved.push({ accts, req, t0 });
    return null;
  }
  stats.ops[req.kind] = (stats.ops[req.kind] ?? 0) + 1;
  await req.apply(r, t0, Date.now());
  if (r.status < 300 && req.remember !== false) {
    const { method, path, body, kind } = req;
    accts[0].remember({ method, path, body, kind, status: r.status, json: r.json, accounts: accts.map((x) => x.id) });
  }
  return r;
}

/** Records an answer the model did not expect; true when it was `status`. */
export function expectStatus(ctx, a, r, status, label) {
  return ctx.check.expect(r.status === status, a.id, `${label}: ${r.status} ${r.text.slice(0, 200)}`);
}

/** The outcome of a draw (debit, hold, receipt, usage event): admitted only if it fits, refused only if not. */
export function checkDraw(ctx, a, r, amount, t0, t1, okStatus, label) {
  const [lo, hi] = a.availRange(t0, t1);
  if (r.status === okStatus) {
    ctx.check.expect(amount <= hi, a.id, `${label}: ${amount} admitted, model available ≤ ${hi}`);
    return true;
  }
  if (r.status === 402) {
    ctx.stats.refused++;
    ctx.check.expect(amount > lo, a.id, `${label}: ${amount} refused, model available ≥ ${lo}`);
    const j = r.json ?? {};
    ctx.check.expect(
      j.code === "insufficient_credits" && j.requested === amount && j.available >= lo && j.available <= hi,
      a.id,
      `${label}: 402 members ${JSON.stringify({ code: j.code, requested: j.requested, available: j.available })}, model ${lo}..${hi}`,
    );
    return false;
  }
  ctx.check.expect(false, a.id, `${label}: ${r.status} ${r.text.slice(0, 200)}`);
  return false;
}

/** An amount to draw: mostly what fits, a share past what the account holds. */
function drawAmount(ctx, a, max) {
  const [lo, hi] = a.availRange(Date.now(), Date.now());
  if (ctx.rng() < SHORT_SHARE) return Math.max(1, hi + ctx.rng.int(1, 50));
  return ctx.rng.int(1, Math.max(1, Math.min(max, lo)));
}

export function grant(ctx, [a]) {
  const { rng, check } = ctx;
  const now = Date.now();
  const latestEffMs = ctx.deadlineMs - 5_000;
  let kind = rng.weighted({ purchased: 5, promotional: 3, compensatory: 2, pending: 1.5, awaiting: 1.5 });
  if (kind === "pending" && (a.pend.length >= PENDING_MAX || now + 15_000 > latestEffMs)) kind = "purchased";
  const grant_id = a.nextId("g");
  const amount = rng.int(100, 5_000);
  const paid = {
    type: "purchased",
    cost_basis: { amount: amount * rng.int(1, 4), currency: "USD" },
    source: "purchase",
  };
  const effMs = kind === "pending" ? now + rng.int(10_000, Math.min(120_000, latestEffMs - now)) : null;
  const terms = {
    purchased: paid,
    promotional: {
      type: "promotional",
      expires_at: iso(now + 30 * 86_400_000 + rng.int(0, 86_400_000)),
      campaign: "soak",
    },
    compensatory: { type: "compensatory", reason: "soak: incident credit", incident_id: "inc-soak" },
    pending: { ...paid, effective_at: effMs === null ? undefined : iso(effMs) },
    awaiting: { ...paid, awaiting_payment: true },
  }[kind];
  const body = { grant_id, amount, priority: rng.int(0, 3) * 50, ...terms };
  return perform(ctx, [a], {
    kind: "grant",
    method: "POST",
    path: `/v1/accounts/${a.id}/grants`,
    body,
    apply: (r, t0, t1) => {
      if (!expectStatus(ctx, a, r, 201, `grant ${grant_id} (${kind})`)) return;
      a.exists = true;
      const status = r.json.grant?.status;
      if (kind === "awaiting") {
        check.expect(status === "awaiting_payment", a.id, `grant ${grant_id}: status ${status}`);
        a.awaiting.set(grant_id, { amount, open: true });
      } else {
        check.expect(
          status === (kind === "pending" ? "pending" : "active"),
          a.id,
          `grant ${grant_id}: status ${status}`,
        );
        a.total += amount;
        a.lots.set(grant_id, { type: body.type, amount, voided: false, effMs: effMs ?? 0 });
        if (effMs !== null) a.pend.push({ grant_id, amount, effMs });
      }
      checkBalance(check, a, r.json.balance, t0, t1, `grant ${grant_id}`);
    },
  });
}

export function debit(ctx, [a]) {
  const debit_id = a.nextId("d");
  const amount = drawAmount(ctx, a, 300);
  const body = { debit_id, amount, ...(ctx.rng() < 0.3 ? { metadata: { route: "/v1/chat", model: "m-soak" } } : {}) };
  return perform(ctx, [a], {
    kind: "debit",
    method: "POST",
    path: `/v1/accounts/${a.id}/debits`,
    body,
    apply: (r, t0, t1) => {
      if (!checkDraw(ctx, a, r, amount, t0, t1, 200, `debit ${debit_id}`)) return;
      const j = r.json;
      ctx.check.expect(
        j.amount === amount && (j.applied_more || sumApplied(j.applied) === amount),
        a.id,
        `debit ${debit_id}: answered amount ${j.amount}, applied Σ ${sumApplied(j.applied)}`,
      );
      a.total -= amount;
      checkBalance(ctx.check, a, j.balance, t0, t1, `debit ${debit_id}`);
    },
  });
}

export function hold(ctx, [a]) {
  const hold_id = a.nextId("h");
  const amount = drawAmount(ctx, a, 400);
  return perform(ctx, [a], {
    kind: "hold",
    method: "POST",
    path: `/v1/accounts/${a.id}/holds`,
    body: { hold_id, amount, ttl_seconds: HOLD_TTL_S },
    apply: (r, t0, t1) => {
      if (!checkDraw(ctx, a, r, amount, t0, t1, 201, `hold ${hold_id}`)) return;
      ctx.check.expect(r.json.status === "open", a.id, `hold ${hold_id}: status ${r.json.status}`);
      a.held += amount;
      a.holds.set(hold_id, { amount, open: true, voids: a.voids });
      checkBalance(ctx.check, a, r.json.balance, t0, t1, `hold ${hold_id}`);
    },
  });
}

/** Closes an open hold: a full or partial capture, or a release. */
export function closeHold(ctx, [a], how) {
  const open = [...a.holds.entries()].filter(([, h]) => h.open);
  const [hold_id, h] = ctx.rng.pick(open);
  const capture = how === "capture";
  const c = capture ? (ctx.rng() < 0.5 ? h.amount : ctx.rng.int(0, h.amount)) : 0;
  const body = capture ? (c === h.amount && ctx.rng() < 0.5 ? {} : { amount: c }) : {};
  return perform(ctx, [a], {
    kind: how,
    method: "POST",
    path: `/v1/accounts/${a.id}/holds/${hold_id}/${how}`,
    body,
    apply: (r, t0, t1) => {
      if (!expectStatus(ctx, a, r, 200, `${how} ${hold_id}`)) return;
      const j = r.json;
      ctx.check.expect(
        j.status === (capture ? "captured" : "released") &&
          (capture ? j.captured === c : true) &&
          j.released === h.amount - c,
        a.id,
        `${how} ${hold_id}: ${JSON.stringify({ status: j.status, captured: j.captured, released: j.released })}, model captured ${c} of ${h.amount}`,
      );
      h.open = false;
      a.held -= h.amount;
      a.total -= c;
      if (a.voids > h.voids) a.total += observedChange(ctx.check, a, j.balance, c - h.amount, 0, `${how} ${hold_id}`);
      checkBalance(ctx.check, a, j.balance, t0, t1, `${how} ${hold_id}`);
    },
  });
}

export function receipt(ctx, [a]) {
  const receipt_id = a.nextId("rc");
  const amount = drawAmount(ctx, a, 200);
  return perform(ctx, [a], {
    kind: "receipt",
    method: "POST",
    path: `/v1/accounts/${a.id}/receipts`,
    body: { receipt_id, amount, ttl_seconds: RECEIPT_TTL_S },
    apply: (r, t0, t1) => {
      if (!checkDraw(ctx, a, r, amount, t0, t1, 201, `receipt ${receipt_id}`)) return;
      ctx.check.expect(typeof r.json.receipt === "string", a.id, `receipt ${receipt_id}: no token`);
      a.held += amount;
      a.receipts.set(receipt_id, { amount, token: r.json.receipt, open: true, voids: a.voids });
      checkBalance(ctx.check, a, r.json.balance, t0, t1, `receipt ${receipt_id}`);
    },
  });
}

export function settle(ctx, [a]) {
  const open = [...a.receipts.entries()].filter(([, x]) => x.open);
  const [receipt_id, rc] = ctx.rng.pick(open);
  const used = ctx.rng.int(0, rc.amount);
  return perform(ctx, [a], {
    kind: "settle",
    method: "POST",
    path: "/v1/receipts/settle",
    body: { receipt: rc.token, used },
    apply: (r, t0, t1) => {
      if (!expectStatus(ctx, a, r, 200, `settle ${receipt_id}`)) return;
      const j = r.json;
      ctx.check.expect(
        j.receipt_id === receipt_id && j.used === used && j.released === rc.amount - used,
        a.id,
        `settle ${receipt_id}: ${JSON.stringify({ used: j.used, released: j.released })}, model used ${used} of ${rc.amount}`,
      );
      rc.open = false;
      a.held -= rc.amount;
      a.total -= used;
      if (a.voids > rc.voids)
        a.total += observedChange(ctx.check, a, j.balance, used - rc.amount, 0, `settle ${receipt_id}`);
      checkBalance(ctx.check, a, j.balance, t0, t1, `settle ${receipt_id}`);
    },
  });
}

/** Activates (issues the lot) or cancels a grant awaiting payment. */
export function closeAwaiting(ctx, [a], how) {
  const open = [...a.awaiting.entries()].filter(([, g]) => g.open);
  const [grant_id, g] = ctx.rng.pick(open);
  const activate = how === "activate";
  return perform(ctx, [a], {
    kind: how,
    method: "POST",
    path: `/v1/accounts/${a.id}/grants/${grant_id}/${how}`,
    body: activate ? { payment_ref: `pi_soak_${grant_id}` } : { reason: "card declined" },
    apply: (r, t0, t1) => {
      if (!expectStatus(ctx, a, r, 200, `${how} ${grant_id}`)) return;
      const status = r.json.grant?.status;
      ctx.check.expect(status === (activate ? "active" : "cancelled"), a.id, `${how} ${grant_id}: status ${status}`);
      g.open = false;
      if (activate) {
        a.total += g.amount;
        a.lots.set(grant_id, { type: "purchased", amount: g.amount, voided: false, effMs: 0 });
      }
      checkBalance(ctx.check, a, r.json.balance, t0, t1, `${how} ${grant_id}`);
    },
  });
}

/** A PUT of the account's record (a low-balance threshold, so balance.low alerts and webhooks flow). */
export function account(ctx, [a]) {
  return perform(ctx, [a], {
    kind: "account",
    method: "PUT",
    path: `/v1/accounts/${a.id}`,
    body: { low_balance: { credits: ctx.rng.int(0, 800) }, metadata: { soak: "1" } },
    remember: false,
    dup: false, // a replace, not idempotency-keyed: two at once answer two updated_at
    apply: (r) => {
      expectStatus(ctx, a, r, 200, "account PUT");
    },
  });
}

export function read(ctx, [a]) {
  return perform(ctx, [a], {
    kind: "read",
    method: "GET",
    path: `/v1/accounts/${a.id}/balance`,
    body: undefined,
    remember: false,
    dup: false, // each read answers its own as_of
    apply: (r, t0, t1) => {
      if (expectStatus(ctx, a, r, 200, "balance")) checkBalance(ctx.check, a, r.json, t0, t1, "balance read");
    },
  });
}

/** Remembers an answered usage event (bounded), so a later batch can send it again. */
export function keepEvent(a, ev) {
  a.events.set(ev.event_id, ev);
  if (a.events.size > EVENTS_KEPT) a.events.delete(a.events.keys().next().value);
}
