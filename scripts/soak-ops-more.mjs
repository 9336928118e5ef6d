/**
 * The soak's other operations (scripts/soak.mjs): usage batches and
 * transfers over several accounts, voids, refunds, invoices and their voids,
 * and replays of earlier requests (the same body: the first answer, nothing
 * moves; another body: 409). Same conventions as scripts/soak-ops.mjs.
 */
import { same } from "./soak-http.mjs";
import { checkBalance, observedChange } from "./soak-model.mjs";
import { checkDraw, expectStatus, keepEvent, perform, sumApplied } from "./soak-ops.mjs";

/** Share of replays sent with another body (expected 409). */
export const CONFLICT_SHARE = 0.15;

export function usage(ctx, accts) {
  const { rng } = ctx;
  const events = [];
  for (const a of accts) {
    for (let i = rng.int(1, 3); i > 0; i--) {
      events.push({ event_id: a.nextId("e"), account_id: a.id, amount: rng.int(1, 200) });
    }
  }
  events.sort(() => rng() - 0.5);
  const old = accts.flatMap((a) => [...a.events.values()]);
  if (old.length > 0 && rng() < 0.3) events.push(rng.pick(old)); // sent again in a later batch
  if (rng() < 0.15) events.push(rng.pick(events)); // twice in one batch
  const byId = new Map(accts.map((a) => [a.id, a]));
  return perform(ctx, accts, {
    kind: "usage",
    method: "POST",
    path: "/v1/usage",
    body: { events },
    dup: false, // two batches at once answer `replayed` on one side: compared event by event below instead
    remember: false,
    apply: (r, t0, t1) => {
      if (!expectStatus(ctx, accts[0], r, 200, "usage")) return;
      const results = r.json.results ?? [];
      if (!ctx.check.expect(results.length === events.length, accts[0].id, `usage: ${results.length} results`)) return;
      events.forEach((ev, i) => {
        const a = byId.get(ev.account_id);
        const res = results[i];
        const label = `usage event ${ev.event_id}`;
        ctx.check.expect(res.event_id === ev.event_id, a.id, `${label}: result for ${res.event_id}`);
        if (a.events.has(ev.event_id)) {
          ctx.check.expect(
            res.status === 200 && res.replayed === true && res.amount === ev.amount,
            a.id,
            `${label} sent again: ${JSON.stringify(res).slice(0, 200)}`,
          );
          return;
        }
        if (
          !checkDraw(
            ctx,
            a,
            { status: res.status, json: res, text: JSON.stringify(res) },
            ev.amount,
            t0,
            t1,
            200,
            label,
          )
        )
          return;
        ctx.check.expect(
          res.amount === ev.amount && !res.replayed,
          a.id,
          `${label}: ${JSON.stringify(res).slice(0, 200)}`,
        );
        a.total -= ev.amount;
        keepEvent(a, ev);
      });
    },
  });
}

export function transfer(ctx, [a, b]) {
  const [lo, hi] = a.availRange(Date.now(), Date.now());
  const amount =
    ctx.rng() < 0.15 ? Math.max(1, hi + ctx.rng.int(1, 50)) : ctx.rng.int(1, Math.max(1, Math.min(500, lo)));
  const transfer_id = `t-${ctx.stamp}-${ctx.transfers++}`;
  const body = { transfer_id, from_account: a.id, to_account: b.id, amount, reason: "soak transfer" };
  return perform(ctx, [a, b], {
    kind: "transfer",
    method: "POST",
    path: "/v1/transfers",
    body,
    apply: async (r, t0, t1) => {
      if (r.status === 409) {
        // Only an interrupted transfer the recovery undid may answer this: its credits came back to the source.
        const got = await ctx.client.send("GET", `/v1/transfers/${transfer_id}`);
        ctx.stats.transfersUndone++;
        ctx.check.expect(
          got?.json?.status === "cancelled",
          a.id,
          `transfer ${transfer_id}: 409, status ${got?.json?.status}`,
        );
        return;
      }
      if (!checkDraw(ctx, a, r, amount, t0, t1, 201, `transfer ${transfer_id}`)) return;
      const j = r.json;
      ctx.check.expect(
        j.status === "completed" && j.amount === amount && (j.applied_more || sumApplied(j.applied) === amount),
        a.id,
        `transfer ${transfer_id}: ${JSON.stringify({ status: j.status, amount: j.amount, applied: sumApplied(j.applied) })}`,
      );
      a.total -= amount;
      b.total += amount;
    },
  });
}

export function voidGrant(ctx, [a]) {
  const [grant_id, lot] = ctx.rng.pick([...a.lots.entries()].filter(([, l]) => !l.voided));
  return perform(ctx, [a], {
    kind: "void",
    method: "POST",
    path: `/v1/accounts/${a.id}/grants/${grant_id}/void`,
    body: { reason: "soak: void" },
    apply: (r, t0, t1) => {
      if (r.status === 409) {
        ctx.check.expect(r.json?.code === "grant_closed", a.id, `void ${grant_id}: 409 ${r.json?.code}`);
        lot.voided = true; // spent: nothing to void
        return;
      }
      if (!expectStatus(ctx, a, r, 200, `void ${grant_id}`)) return;
      ctx.check.expect(r.json.grant?.status === "voided", a.id, `void ${grant_id}: status ${r.json.grant?.status}`);
      const pending = a.pend.some((p) => p.grant_id === grant_id && p.effMs > t1 + 1_500);
      a.pend = a.pend.filter((p) => p.grant_id !== grant_id);
      const change = observedChange(ctx.check, a, r.json.balance, -lot.amount, 0, `void ${grant_id}`);
      if (pending) ctx.check.expect(change === -lot.amount, a.id, `void of pending ${grant_id}: ${change}`);
      a.total += change;
      a.voids++;
      lot.voided = true;
      checkBalance(ctx.check, a, r.json.balance, t0, t1, `void ${grant_id}`);
    },
  });
}

export function refund(ctx, [a]) {
  const now = Date.now();
  const lots = [...a.lots.entries()].filter(([, l]) => l.type === "purchased" && !l.voided && l.effMs < now - 5_000);
  const [grant_id, lot] = ctx.rng.pick(lots);
  const refund_id = a.nextId("rf");
  const amount = ctx.rng.int(1, 60);
  return perform(ctx, [a], {
    kind: "refund",
    method: "POST",
    path: `/v1/accounts/${a.id}/grants/${grant_id}/refund`,
    body: { refund_id, amount, reason: "soak: refund" },
    apply: (r, t0, t1) => {
      const code = r.json?.code;
      if ((r.status === 400 && code === "invalid_amount") || (r.status === 409 && code === "grant_closed")) {
        ctx.stats.refused++;
        if (code === "grant_closed") lot.voided = true; // nothing left in it
        return;
      }
      if (!expectStatus(ctx, a, r, 200, `refund ${refund_id}`)) return;
      ctx.check.expect(r.json.refund?.amount === amount, a.id, `refund ${refund_id}: ${r.json.refund?.amount}`);
      a.total -= amount;
      checkBalance(ctx.check, a, r.json.balance, t0, t1, `refund ${refund_id}`);
    },
  });
}

export function invoice(ctx, [a]) {
  const invoice_id = a.nextId("inv");
  const lines = Array.from({ length: ctx.rng.int(1, 3) }, () => ({
    description: "usage",
    amount: ctx.rng.int(10, 400),
  }));
  const billed = lines.reduce((s, l) => s + l.amount, 0);
  return perform(ctx, [a], {
    kind: "invoice",
    method: "POST",
    path: `/v1/accounts/${a.id}/invoices`,
    body: { invoice_id, lines },
    apply: (r, t0, t1) => {
      if (!expectStatus(ctx, a, r, 201, `invoice ${invoice_id}`)) return;
      const [lo, hi] = a.availRange(t0, t1);
      const c = r.json.credits_applied;
      ctx.check.expect(
        r.json.status === "finalized" &&
          c >= Math.min(billed, lo) &&
          c <= Math.min(billed, hi) &&
          r.json.amount_due === billed - c,
        a.id,
        `invoice ${invoice_id}: applied ${c} due ${r.json.amount_due} of ${billed}, model available ${lo}..${hi}`,
      );
      a.total -= c;
      a.invoices.set(invoice_id, { applied: c, voided: false, voids: a.voids });
      checkBalance(ctx.check, a, r.json.balance, t0, t1, `invoice ${invoice_id}`);
    },
  });
}

export function invoiceVoid(ctx, [a]) {
  const [invoice_id, inv] = ctx.rng.pick([...a.invoices.entries()].filter(([, x]) => !x.voided));
  return perform(ctx, [a], {
    kind: "invoiceVoid",
    method: "POST",
    path: `/v1/accounts/${a.id}/invoices/${invoice_id}/void`,
    body: { reason: "soak: credit note" },
    apply: (r, t0, t1) => {
      if (!expectStatus(ctx, a, r, 200, `invoice void ${invoice_id}`)) return;
      ctx.check.expect(r.json.status === "voided", a.id, `invoice void ${invoice_id}: status ${r.json.status}`);
      inv.voided = true;
      a.total += inv.applied;
      if (a.voids > inv.voids)
        a.total += observedChange(ctx.check, a, r.json.balance, -inv.applied, 0, `invoice void ${invoice_id}`);
      checkBalance(ctx.check, a, r.json.balance, t0, t1, `invoice void ${invoice_id}`);
    },
  });
}

/** Another body under the same id, and the code the gate must refuse it with; null when the kind has none. */
function conflicting(rec) {
  const b = rec.body;
  switch (rec.kind) {
    case "grant":
    case "debit":
    case "hold":
    case "receipt":
    case "transfer":
    case "refund":
      return { body: { ...b, amount: b.amount + 1 }, path: rec.path, code: "idempotency_conflict" };
    case "invoice":
      return {
        body: { ...b, lines: [...b.lines, { description: "extra", amount: 1 }] },
        path: rec.path,
        code: "idempotency_conflict",
      };
    case "capture":
      return { body: {}, path: rec.path.replace(/\/capture$/, "/release"), code: "hold_closed" };
    case "release":
      return { body: {}, path: rec.path.replace(/\/release$/, "/capture"), code: "hold_closed" };
    case "settle":
      return { body: { ...b, used: b.used === 0 ? 1 : b.used - 1 }, path: rec.path, code: "receipt_settled" };
    default:
      return null;
  }
}

/**
 * Sends an earlier successful request again: the same body answers the first
 * status and body with `idempotent-replayed: true`; another body under the
 * same id is refused with 409. Either way the balances of every account it
 * named must not have moved (read right after).
 */
export async function replay(ctx, accts, rec) {
  const a = accts[0];
  const alt = ctx.rng() < CONFLICT_SHARE ? conflicting(rec) : null;
  const t0 = Date.now();
  const r = alt
    ? await ctx.client.send(rec.method, alt.path, alt.body)
    : await ctx.client.send(rec.method, rec.path, rec.body);
  if (!r) return; // no answer within the bounds: a replay changes nothing, so nothing is set aside
  ctx.stats.ops[alt ? "conflict" : "replay"] = (ctx.stats.ops[alt ? "conflict" : "replay"] ?? 0) + 1;
  if (alt) {
    ctx.check.expect(
      r.status === 409 && r.json?.code === alt.code,
      a.id,
      `${rec.kind} under a used id with another body: ${r.status} ${r.json?.code}, expected 409 ${alt.code}`,
    );
  } else {
    ctx.check.expect(
      r.status === rec.status && r.replayed && same(r.json, rec.json),
      a.id,
      `${rec.kind} replay ${rec.path}: ${r.status} replayed=${r.replayed} same=${same(r.json, rec.json)}`,
    );
  }
  for (const x of accts) {
    const b = await ctx.client.send("GET", `/v1/accounts/${x.id}/balance`);
    if (b?.status === 200) checkBalance(ctx.check, x, b.json, t0, Date.now(), `balance after a ${rec.kind} replay`);
  }
}
