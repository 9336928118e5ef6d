/**
 * The top-up decision (src/ledger/topup.ts) and the awaiting-payment
 * transitions (src/ledger/awaiting.ts), against a small reference model:
 * random debits, grants, activations, cancellations and clock moves. The
 * model keeps every request with its time and status and recomputes the
 * month's total from that history; the rules keep only a running tally.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { GrantCommand } from "../../src/ledger";
import { type AwaitingGrant, activationCommand, planTransition } from "../../src/ledger/awaiting";
import {
  addRequest,
  decideTopUp,
  monthStartUtc,
  type TopUpMonth,
  type TopUpRule,
  takeBack,
} from "../../src/ledger/topup";

const DAY = 86_400_000;
const T0 = Date.UTC(2030, 0, 20);

const ruleOf = (below: number, amount: number, maxPerMonth: number | null): TopUpRule => ({
  unit: "credits",
  below,
  amount,
  maxPerMonth,
  grant: { type: "purchased", costBasis: null, expiresInDays: null },
  createdAtMs: T0,
  updatedAtMs: T0,
});

const command = (grantId: string, amount: number): GrantCommand => ({
  grantId,
  unit: "credits",
  type: "purchased",
  amount,
  priority: 100,
  effectiveAtMs: null,
  expiresAtMs: null,
  source: null,
  reason: null,
  campaign: null,
  incidentId: null,
  costBasis: null,
  metadata: null,
  sourceGrantId: null,
});

const record = (grantId: string, amount: number, atMs: number): AwaitingGrant => ({
  grantId,
  command: command(grantId, amount),
  expiresInDays: null,
  topup: true,
  status: "awaiting_payment",
  createdAtMs: atMs,
  closedAtMs: null,
  paymentRef: null,
  cancelReason: null,
});

describe("decideTopUp: worked examples", () => {
  it("asks below the threshold, not at it; one outstanding; skips (never shrinks) past the cap", () => {
    const rule = ruleOf(100, 500, 1000);
    expect(decideTopUp(rule, 99, false, null, T0)).toEqual({ request: true, amount: 500, monthTotal: 500 });
    expect(decideTopUp(rule, 100, false, null, T0)).toEqual({ request: false, why: "not_below" });
    expect(decideTopUp(rule, 0, true, null, T0)).toEqual({ request: false, why: "outstanding" });
    // 600 already this month: 600 + 500 > 1000, skipped though 400 would fit.
    const month: TopUpMonth = { monthStartMs: monthStartUtc(T0), requested: 600 };
    expect(decideTopUp(rule, 0, false, month, T0)).toEqual({ request: false, why: "cap" });
    // 501 this month: 1001 is one past the cap.
    expect(decideTopUp(rule, 0, false, { ...month, requested: 501 }, T0)).toEqual({ request: false, why: "cap" });
    // 500 this month: exactly at the cap is allowed.
    expect(decideTopUp(rule, 0, false, { ...month, requested: 500 }, T0)).toMatchObject({ monthTotal: 1000 });
    // Last month's total does not count in a new month (2030-01-20 + 12 days = 2030-02-01).
    expect(decideTopUp(rule, 0, false, month, T0 + 12 * DAY)).toMatchObject({ request: true, monthTotal: 500 });
    expect(monthStartUtc(Date.UTC(2030, 1, 28, 23, 59))).toBe(Date.UTC(2030, 1, 1));
  });

  it("a cancelled request is taken back only from the month it was made in", () => {
    const jan: TopUpMonth = { monthStartMs: Date.UTC(2030, 0, 1), requested: 700 };
    expect(takeBack(jan, 500, Date.UTC(2030, 0, 31))).toEqual({ monthStartMs: Date.UTC(2030, 0, 1), requested: 200 });
    expect(takeBack(jan, 500, Date.UTC(2029, 11, 31))).toEqual(jan);
    expect(addRequest(jan, 100, Date.UTC(2030, 1, 1))).toEqual({ monthStartMs: Date.UTC(2030, 1, 1), requested: 100 });
  });
});

describe("awaiting transitions: worked examples", () => {
  it("the same transition again is a repeat; the other one is grant_closed", () => {
    const open = record("topup.1", 10, T0);
    const act = planTransition(open, "activate", { paymentRef: "p" }, T0 + 1);
    expect(act).toMatchObject({ ok: true, value: { kind: "apply", record: { status: "activated", paymentRef: "p" } } });
    if (!act.ok || act.value.kind !== "apply") throw new Error("unreachable");
    const done = act.value.record;
    expect(planTransition(done, "activate", {}, T0 + 2)).toEqual({ ok: true, value: { kind: "repeat" } });
    expect(planTransition(done, "cancel", { reason: "x" }, T0 + 2)).toMatchObject({
      ok: false,
      error: { code: "grant_closed" },
    });
  });

  it("activation dates the grant now, counts expires_in_days from then, and refuses an expiry already passed", () => {
    const r = { ...record("g", 10, T0), expiresInDays: 30 };
    expect(activationCommand(r, T0 + DAY)).toMatchObject({
      ok: true,
      value: { effectiveAtMs: T0 + DAY, expiresAtMs: T0 + 31 * DAY },
    });
    const dated = {
      ...record("h", 10, T0),
      command: { ...command("h", 10), effectiveAtMs: T0 - DAY, expiresAtMs: T0 + DAY },
    };
    expect(activationCommand(dated, T0)).toMatchObject({
      ok: true,
      value: { effectiveAtMs: T0, expiresAtMs: T0 + DAY },
    });
    expect(activationCommand(dated, T0 + DAY)).toMatchObject({ ok: false, error: { code: "grant_closed" } });
  });
});

type Op =
  | { kind: "debit"; amount: number }
  | { kind: "grant"; amount: number }
  | { kind: "activate" }
  | { kind: "cancel" }
  | { kind: "wait"; ms: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant("debit" as const), amount: fc.integer({ min: 1, max: 400 }) }),
  fc.record({ kind: fc.constant("grant" as const), amount: fc.integer({ min: 1, max: 400 }) }),
  fc.record({ kind: fc.constant("activate" as const) }),
  fc.record({ kind: fc.constant("cancel" as const) }),
  fc.record({ kind: fc.constant("wait" as const), ms: fc.integer({ min: 1, max: 20 * DAY }) }),
);

/** The month a time falls in, computed independently of monthStartUtc. */
const monthKey = (ms: number) => new Date(ms).toISOString().slice(0, 7);

describe("top-up against a reference model", () => {
  it("at most one outstanding, monthly totals within the cap, a request only below the threshold, the same decisions", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 500 }),
        fc.integer({ min: 1, max: 300 }),
        // The cap lands on, just under or just over a multiple of the amount, so its edge is exercised.
        fc.option(fc.tuple(fc.integer({ min: 1, max: 5 }), fc.integer({ min: -1, max: 1 })), { nil: null }),
        fc.integer({ min: 0, max: 1000 }),
        fc.array(op, { maxLength: 80 }),
        (below, amount, cap, start, ops) => {
          const maxPerMonth = cap === null ? null : Math.max(amount, amount * cap[0] + cap[1]);
          const rule = ruleOf(below, amount, maxPerMonth);
          let now = T0;
          let available = start;
          let month: TopUpMonth | null = null;
          const records: AwaitingGrant[] = [];
          for (const o of ops) {
            const open = records.find((r) => r.status === "awaiting_payment");
            let wroteEntries = false;
            if (o.kind === "wait") now += o.ms;
            else if (o.kind === "debit" && o.amount <= available) {
              available -= o.amount;
              wroteEntries = true;
            } else if (o.kind === "grant") {
              available += o.amount;
              wroteEntries = true;
            } else if ((o.kind === "activate" || o.kind === "cancel") && open) {
              const planned = planTransition(open, o.kind, { reason: "r" }, now);
              if (!planned.ok || planned.value.kind !== "apply") throw new Error("an open record must close");
              records[records.indexOf(open)] = planned.value.record;
              if (o.kind === "activate") {
                available += open.command.amount;
                wroteEntries = true;
              } else month = takeBack(month, open.command.amount, open.createdAtMs);
            }
            if (!wroteEntries) continue;
            const outstanding = records.some((r) => r.status === "awaiting_payment");
            const decision = decideTopUp(rule, available, outstanding, month, now);
            // The model: from the whole history, this month's requests not cancelled.
            const modelTotal = records
              .filter((r) => r.status !== "cancelled" && monthKey(r.createdAtMs) === monthKey(now))
              .reduce((s, r) => s + r.command.amount, 0);
            const modelAsks =
              available < below && !outstanding && (maxPerMonth === null || modelTotal + amount <= maxPerMonth);
            expect(decision.request).toBe(modelAsks);
            if (decision.request) {
              expect(decision.monthTotal).toBe(modelTotal + amount);
              records.push(record(`topup.${records.length + 1}`, decision.amount, now));
              month = addRequest(month, decision.amount, now);
            }
            expect(records.filter((r) => r.status === "awaiting_payment").length).toBeLessThanOrEqual(1);
          }
          if (maxPerMonth !== null) {
            const perMonth = new Map<string, number>();
            for (const r of records.filter((x) => x.status !== "cancelled")) {
              perMonth.set(monthKey(r.createdAtMs), (perMonth.get(monthKey(r.createdAtMs)) ?? 0) + r.command.amount);
            }
            for (const total of perMonth.values()) expect(total).toBeLessThanOrEqual(maxPerMonth);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
