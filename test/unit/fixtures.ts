/** Builders shared by the unit suites: plain data, sensible defaults, frozen where the core must not write. */
import {
  type Entry,
  type EntryDraft,
  entryHash,
  GENESIS_HASH,
  type GrantCommand,
  type Hold,
  type Lot,
} from "../../src/ledger";

export const T0 = Date.UTC(2026, 0, 1);

let order = 0;

/** A live, unexpired, unheld `credits` lot; override any field. */
export function makeLot(over: Partial<Lot> & { grantId: string }): Lot {
  order += 1;
  const amount = over.amount ?? 100;
  return {
    unit: "credits",
    type: "purchased",
    amount,
    priority: 100,
    effectiveAtMs: T0 - 1000,
    expiresAtMs: null,
    source: null,
    reason: null,
    campaign: null,
    incidentId: null,
    costBasis: null,
    metadata: null,
    sourceGrantId: null,
    createdAtMs: T0 - 1000,
    createdOrder: order,
    remaining: amount,
    held: 0,
    voidedAtMs: null,
    ...over,
  };
}

export function grantCmd(over: Partial<GrantCommand> & { grantId: string }): GrantCommand {
  return {
    unit: "credits",
    type: "purchased",
    amount: 100,
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
    ...over,
  };
}

export function makeHold(over: Partial<Hold> & { holdId: string; allocations: Hold["allocations"] }): Hold {
  const amount = over.amount ?? over.allocations.reduce((s, a) => s + a.amount, 0);
  return {
    kind: "hold",
    unit: "credits",
    amount,
    status: "open",
    expiresAtMs: T0 + 300_000,
    captured: 0,
    released: 0,
    createdAtMs: T0,
    closedAtMs: null,
    ...over,
  };
}

/** Deep-freezes test inputs: a core function that writes to them throws (ES modules are strict). */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

export const byId = (lots: Iterable<Lot>): Map<string, Lot> => new Map([...lots].map((l) => [l.grantId, l]));

/** Serves drafts as an account's chain: seq 1..n, ids, ISO times, prev_hash links, hashes. */
export function serveChain(
  accountId: string,
  drafts: readonly (EntryDraft & { recordedAtMs: number })[],
  startPrevHash = GENESIS_HASH,
  startSeq = 1,
): Entry[] {
  const out: Entry[] = [];
  let prev = startPrevHash;
  drafts.forEach((d, i) => {
    const seq = startSeq + i;
    const body: Omit<Entry, "hash"> = {
      account_id: accountId,
      seq,
      entry_id: `e${seq}`,
      txn_id: `t${seq}`,
      kind: d.kind,
      unit: d.unit,
      amount: d.amount,
      held_delta: d.heldDelta,
      grant_id: d.grantId,
      credit_type: d.creditType,
      ref: d.ref,
      actor: "system:test",
      reason: d.reason,
      effective_at: new Date(d.effectiveAtMs).toISOString(),
      recorded_at: new Date(d.recordedAtMs).toISOString(),
      prev_hash: prev,
    };
    const hash = entryHash(body);
    out.push({ ...body, hash });
    prev = hash;
  });
  return out;
}
