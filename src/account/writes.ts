/** Grants, voids and debits on one account: each loads from the core, asks src/ledger, commits once. */
import { convertedView, planDebitMaybeConverting, planGrant, planVoid, WRITE_APPLIED_MAX, withRating } from "../ledger";
import { type AccountCore, POLICY_UNKNOWN } from "./core";
import { accountRecord } from "./records";
import { readDebit } from "./storage";
import type { AccountInput, DebitRequest, GrantRequest, Idempotency, OpContext, Outcome } from "./types";
import { velocityGate } from "./velocity";
import { answer, debitBody, fromLedgerError, grantBody, missingAccount, refuse } from "./views";

/** Creates or updates the account; fields given replace, fields omitted are kept. */
export function upsertAccount(core: AccountCore, accountId: string, input: AccountInput): Outcome {
  const nowMs = core.now();
  const created = core.account === null;
  const next = accountRecord(core.account, accountId, input, nowMs);
  // A new threshold above the balance is a crossing too; one below re-arms.
  core.saveAccount(next, nowMs);
  if (input.velocity !== undefined) core.velocity.keepOnly(Object.keys(next.velocity ?? {}));
  return answer(next, created ? 201 : 200);
}

export function grant(core: AccountCore, ctx: OpContext, cmd: GrantRequest, idem: Idempotency): Outcome {
  const first = core.recall("grant", idem);
  if (first) return first;
  const nowMs = core.now();
  if (core.idTaken(cmd.grantId)) {
    return refuse({ code: "idempotency_conflict", detail: `grant ${cmd.grantId} already exists or is reserved` });
  }
  const typeRefusal = core.grantTypeRefusal(ctx, cmd.type);
  if (typeRefusal) return typeRefusal;
  const planned = planGrant(core.lots.openLots(), cmd, core.lots.size + 1, nowMs);
  if (!planned.ok) return refuse(fromLedgerError(planned.error));
  const { lot, entries } = planned.value;
  return core.commit(
    { ctx, lots: [lot], entries },
    nowMs,
    (lots) => grantBody(ctx.accountId, lot, lot.unit, nowMs, lots, core.awaitingOpen.values()),
    { scope: "grant", idem, status: 201 },
    true,
  );
}

export function voidGrant(core: AccountCore, ctx: OpContext, grantId: string, reason: string | null): Outcome {
  if (core.account === null) return missingAccount(ctx.accountId);
  // A void has no body to compare: repeating it for the same grant is the same void.
  const idem = { key: grantId, bodyHash: "" };
  const first = core.recall("void", idem);
  if (first) return first;
  if (core.sweepDue(ctx) === null) return POLICY_UNKNOWN;
  const lot = core.lots.get(grantId);
  if (!lot) return refuse({ code: "grant_not_found", detail: `grant ${grantId} does not exist` });
  const nowMs = core.now();
  const planned = planVoid(lot, reason, nowMs);
  if (!planned.ok) return refuse(fromLedgerError(planned.error));
  const voided = planned.value.lot;
  return core.commit(
    { ctx, lots: [voided], entries: planned.value.entries },
    nowMs,
    (lots) => grantBody(ctx.accountId, voided, lot.unit, nowMs, lots, core.awaitingOpen.values()),
    { scope: "void", idem, status: 200 },
  );
}

export function debit(core: AccountCore, ctx: OpContext, req: DebitRequest, idem: Idempotency): Outcome {
  if (core.account === null) return missingAccount(ctx.accountId);
  const first = core.recall("debit", idem);
  if (first) return first;
  // Past the idempotency retention the record is gone but the debit is not: never charge twice.
  if (readDebit(core.sql, req.id)) {
    return refuse({ code: "idempotency_conflict", detail: `debit ${req.id} was already applied` });
  }
  const policy = core.policy(ctx);
  if (policy === null || core.sweepDue(ctx) === null) return POLICY_UNKNOWN;
  const nowMs = core.now();
  const draw = { ref: req.id, unit: req.unit, amount: req.amount };
  // `convert: true` brings the rates into req.unit; the policy's convert_from picks and orders them.
  const planned = planDebitMaybeConverting(core.lots, draw, policy, nowMs, req.conversions);
  if (!planned.ok) return refuse(fromLedgerError(planned.error));
  const { applied, converted } = planned.value;
  const velocity = velocityGate(core, req.unit, req.amount, nowMs);
  if (velocity.refused) return velocity.refused;
  // A usage event's own time of use is its entries' effective_at; the DO clock stays their recorded_at.
  const at = req.occurredAtMs;
  const entries =
    at === undefined ? planned.value.entries : planned.value.entries.map((e) => ({ ...e, effectiveAtMs: at }));
  const record = {
    debitId: req.id,
    unit: req.unit,
    amount: req.amount,
    metadata: req.metadata,
    actor: ctx.actor,
    createdAtMs: nowMs,
  };
  return core.commit(
    {
      ctx,
      lots: planned.value.lots,
      entries: withRating(entries, req.rating),
      debit: record,
      velocity: velocity.tally,
    },
    nowMs,
    (lots) => ({
      ...debitBody(ctx.accountId, req, applied, nowMs, lots, core.awaitingOpen.values()),
      ...convertedView(converted, WRITE_APPLIED_MAX),
    }),
    { scope: "debit", idem, status: 200 },
  );
}
