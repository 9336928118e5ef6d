import { lotStatus } from "./lots";
import { type EntryDraft, err, type LedgerError, type Lot, ok, type Result } from "./types";

export interface VoidPlan {
  lot: Lot;
  entries: EntryDraft[];
}

/**
 * Voids a grant: its unspent, unheld remainder leaves by a `grant.voided`
 * entry; held parts stay with their holds (and leave when released).
 * Closed lots (voided, expired, fully spent) refuse with `grant_closed`.
 */
export function planVoid(lot: Lot, reason: string | null, nowMs: number): Result<VoidPlan, LedgerError> {
  const status = lotStatus(lot, nowMs);
  if (status === "voided" || status === "expired" || status === "depleted") {
    return err({ code: "grant_closed", detail: `grant ${lot.grantId} is ${status}` });
  }
  const free = lot.remaining - lot.held;
  const next: Lot = { ...lot, remaining: lot.held, voidedAtMs: nowMs };
  const entries: EntryDraft[] =
    free > 0
      ? [
          {
            kind: "grant.voided",
            unit: lot.unit,
            amount: -free,
            heldDelta: 0,
            grantId: lot.grantId,
            creditType: lot.type,
            ref: null,
            reason,
            effectiveAtMs: nowMs,
          },
        ]
      : [];
  return ok({ lot: next, entries });
}
