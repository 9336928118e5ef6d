/**
 * A legacy import's lots on one account (POST /v1/imports): each line is
 * judged against what this account already holds, and every line to create
 * is planned by the grant's own rules (planGrant) and committed by the one
 * commit path (core.commit) in ONE transaction, with its `legacy_imports`
 * row: entries, hash chain, outbox, journal and cost basis as for any grant.
 *
 * Per line: `created` (or `would_create` in a dry run), `unchanged` (this
 * legacy_id was imported before with the same terms: the idempotent repeat),
 * `conflict` (the id is taken: imported with other terms, or an ordinary
 * grant), or `refused` (the account's state refuses it: an expiry now past
 * by this account's clock, the 9·10^15 total). A dry run writes nothing.
 *
 * Imports bypass the policy's verified-account rule for promotional lots:
 * they carry over credits a customer already holds, they are not new
 * promotions (docs: imports).
 */
import type { ErrorCode } from "../errors";
import { type EntryDraft, type GrantCommand, type Lot, planGrant } from "../ledger";
import { IMPORT_MAX_LOTS_PER_ACCOUNT, type LegacyTerms, termsKey } from "../ledger/migration";
import type { AccountCore } from "./core";
import type { OpContext } from "./types";
import { fromLedgerError } from "./views";

/** One validated line for this account, as the gateway hands it over. */
export interface ImportLot {
  /** Its line in the request, for the result. */
  line: number;
  /** The grant it becomes: grant_id = legacy_id, source "migration". */
  cmd: GrantCommand;
}

export type ImportStatus = "created" | "would_create" | "unchanged" | "conflict" | "refused" | "failed";

export interface ImportResult {
  line: number;
  legacy_id: string;
  account_id: string;
  status: ImportStatus;
  code?: ErrorCode;
  detail?: string;
}

export interface ImportDone {
  results: ImportResult[];
  /** Lots created, entries written, head after (0 entries in a dry run or when nothing was new). */
  created: number;
  entries: number;
  headSeq: number;
}

/** The terms a lot is remembered by: what was sent (absent times as null), for a repeat to compare. */
export function termsOf(accountId: string, cmd: GrantCommand): LegacyTerms {
  return {
    account_id: accountId,
    legacy_id: cmd.grantId,
    amount: cmd.amount,
    unit: cmd.unit,
    type: cmd.type,
    priority: cmd.priority,
    effective_at_ms: cmd.effectiveAtMs,
    expires_at_ms: cmd.expiresAtMs,
    reason: cmd.reason,
    cost_basis: cmd.costBasis,
  };
}

function readTerms(sql: SqlStorage, legacyId: string): string | null {
  const row = sql.exec("SELECT terms FROM legacy_imports WHERE legacy_id = ?", legacyId).toArray()[0];
  return row === undefined ? null : String(row.terms);
}

/**
 * Judges and (unless `dryRun`) applies this account's lines; an account that
 * does not exist is created with its first lot, as a grant creates it.
 */
export function importLots(core: AccountCore, ctx: OpContext, lots: readonly ImportLot[], dryRun: boolean): ImportDone {
  if (lots.length > IMPORT_MAX_LOTS_PER_ACCOUNT) {
    throw new Error(`importLots: ${lots.length} lots, more than ${IMPORT_MAX_LOTS_PER_ACCOUNT} in one call`);
  }
  const nowMs = core.now();
  const results: ImportResult[] = [];
  const result = (l: ImportLot, status: ImportStatus, why?: { code: ErrorCode; detail: string }): ImportResult => ({
    line: l.line,
    legacy_id: l.cmd.grantId,
    account_id: ctx.accountId,
    status,
    ...why,
  });
  // Planned one after another, each seeing those before it (the account's unit total).
  const open: Lot[] = [...core.lots.openLots()];
  const planned: { lot: Lot; terms: string; line: number }[] = [];
  const entries: EntryDraft[] = [];
  const taken = new Set<string>();
  for (const l of lots) {
    const terms = termsKey(termsOf(ctx.accountId, l.cmd));
    const before = readTerms(core.sql, l.cmd.grantId);
    if (before !== null) {
      results.push(
        before === terms
          ? result(l, "unchanged")
          : result(l, "conflict", {
              code: "idempotency_conflict",
              detail: `legacy_id ${l.cmd.grantId} was imported before with other terms`,
            }),
      );
      continue;
    }
    if (core.idTaken(l.cmd.grantId) || taken.has(l.cmd.grantId)) {
      const detail = `grant ${l.cmd.grantId} already exists on this account and was not imported`;
      results.push(result(l, "conflict", { code: "idempotency_conflict", detail }));
      continue;
    }
    const plan = planGrant(open, l.cmd, core.lots.size + planned.length + 1, nowMs);
    if (!plan.ok) {
      const p = fromLedgerError(plan.error);
      results.push(result(l, "refused", { code: p.code, detail: p.detail }));
      continue;
    }
    taken.add(l.cmd.grantId);
    open.push(plan.value.lot);
    planned.push({ lot: plan.value.lot, terms, line: l.line });
    entries.push(...plan.value.entries);
    results.push(result(l, dryRun ? "would_create" : "created"));
  }
  const done: ImportDone = { results, created: 0, entries: 0, headSeq: core.headSeq };
  if (dryRun || planned.length === 0) return done;
  const write = () => {
    for (const p of planned) {
      core.sql.exec(
        "INSERT INTO legacy_imports (legacy_id, terms, line, request_id, imported_at_ms) VALUES (?, ?, ?, ?, ?)",
        p.lot.grantId,
        p.terms,
        p.line,
        ctx.requestId,
        nowMs,
      );
    }
  };
  const outcome = core.commit(
    { ctx, lots: planned.map((p) => p.lot), entries, write },
    nowMs,
    () => null,
    undefined,
    true,
  );
  if (!outcome.ok) throw new Error(`importLots: commit refused (${outcome.problem.code})`);
  return { results, created: planned.length, entries: outcome.write?.entries ?? 0, headSeq: core.headSeq };
}

/**
 * Every line of an account whose call broke off: it may or may not have been
 * applied; sending the import again settles it (applied lines are `unchanged`).
 */
export function failedLots(accountId: string, lots: readonly ImportLot[], detail: string): ImportResult[] {
  return lots.map((l) => ({
    line: l.line,
    legacy_id: l.cmd.grantId,
    account_id: accountId,
    status: "failed",
    code: "overloaded",
    detail,
  }));
}
