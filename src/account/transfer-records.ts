/**
 * The records behind transfers.ts: the transfer and draw records an account
 * keeps in its SQLite (transfers_out for what it sends or gives, transfers_in
 * for what it received or refused), their row mapping, the RPC shapes two
 * accounts exchange, and the views GET /v1/transfers/{id} and a completed
 * transfer serve. No logic of the protocol lives here.
 */
import type { Problem } from "../errors";
import { appliedView, iso, WRITE_APPLIED_MAX } from "../ledger";
import type { TransferSlice } from "../ledger/transfer";
import type { Json, OpContext, Outcome } from "./types";

export type OutState = "preparing" | "applied" | "completed" | "cancelled" | "refused";

/** A transfer this account sends (kind transfer) or a draw it gave a child (kind draw). */
export interface OutRecord {
  transferId: string;
  kind: "transfer" | "draw";
  to: string;
  unit: string;
  amount: number;
  bodyHash: string;
  state: OutState;
  slices: TransferSlice[];
  reason: string | null;
  actor: string;
  response: Json | null;
  /** Why a draw was refused (kind draw, state refused). */
  problem: Problem | null;
  createdAtMs: number;
  updatedAtMs: number;
}

export interface SendCommand {
  transferId: string;
  to: string;
  unit: string;
  amount: number;
  reason: string | null;
  bodyHash: string;
}

/** What the receiving side says about a transfer or draw. */
export type InboundAnswer =
  | { state: "applied"; slices?: TransferSlice[] }
  | { state: "refused"; problem: Problem }
  /** The parent cannot decide now (its global policy unknown): ask again later. */
  | { state: "unavailable" };

export interface InboundRequest {
  transferId: string;
  from: string;
  unit: string;
  amount: number;
  reason: string | null;
  slices: TransferSlice[];
  actor: string;
  requestId: string;
}

/** The RPC methods one account calls on another for transfers and draws. */
export interface TransferPeer {
  applyTransfer(req: InboundRequest): Promise<InboundAnswer>;
  settleInbound(transferId: string, from: string): Promise<InboundAnswer>;
  giveDraw(
    ctx: OpContext,
    req: { transferId: string; to: string; unit: string; amount: number },
  ): Promise<InboundAnswer>;
  balance(ctx: OpContext, unit: string, asOfMs: number | null): Promise<Outcome>;
}

/**
 * Test seams (reachable only through runInDurableObject): a throw injected
 * before the destination is asked, after it applied but before the source
 * records it, and inside the commit's transaction.
 */
export interface TransferFaults {
  beforeApply?: () => void;
  afterApply?: () => void;
  duringCommit?: () => void;
}

type Row = Record<string, SqlStorageValue>;

function outFromRow(r: Row): OutRecord {
  return {
    transferId: String(r.transfer_id),
    kind: String(r.kind) as OutRecord["kind"],
    to: String(r.to_account),
    unit: String(r.unit),
    amount: Number(r.amount),
    bodyHash: String(r.body_hash),
    state: String(r.state) as OutState,
    slices: JSON.parse(String(r.slices)) as TransferSlice[],
    reason: r.reason === null ? null : String(r.reason),
    actor: String(r.actor),
    response: r.response === null ? null : (JSON.parse(String(r.response)) as Json),
    problem: r.problem === null ? null : (JSON.parse(String(r.problem)) as Problem),
    createdAtMs: Number(r.created_at_ms),
    updatedAtMs: Number(r.updated_at_ms),
  };
}

export function readOut(sql: SqlStorage, transferId: string): OutRecord | null {
  const row = sql.exec("SELECT * FROM transfers_out WHERE transfer_id = ?", transferId).toArray()[0];
  return row ? outFromRow(row) : null;
}

export function insertOut(sql: SqlStorage, r: OutRecord): void {
  sql.exec(
    `INSERT INTO transfers_out (transfer_id, kind, to_account, unit, amount, body_hash, state, slices, reason,
       actor, response, problem, created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    r.transferId,
    r.kind,
    r.to,
    r.unit,
    r.amount,
    r.bodyHash,
    r.state,
    JSON.stringify(r.slices),
    r.reason,
    r.actor,
    r.response === null ? null : JSON.stringify(r.response),
    r.problem === null ? null : JSON.stringify(r.problem),
    r.createdAtMs,
    r.updatedAtMs,
  );
}

export function setOutState(sql: SqlStorage, id: string, state: OutState, response: Json | null, nowMs: number): void {
  sql.exec(
    "UPDATE transfers_out SET state = ?, response = ?, updated_at_ms = ? WHERE transfer_id = ?",
    state,
    response === null ? null : JSON.stringify(response),
    nowMs,
    id,
  );
}

export function readIn(sql: SqlStorage, transferId: string): InboundAnswer | null {
  const row = sql.exec("SELECT state, problem FROM transfers_in WHERE transfer_id = ?", transferId).toArray()[0];
  if (!row) return null;
  if (String(row.state) === "applied") return { state: "applied" };
  return { state: "refused", problem: JSON.parse(String(row.problem)) as Problem };
}

export function insertIn(
  sql: SqlStorage,
  req: { transferId: string; from: string; unit: string; amount: number },
  answer: InboundAnswer,
  nowMs: number,
): void {
  sql.exec(
    `INSERT INTO transfers_in (transfer_id, from_account, state, unit, amount, problem, created_at_ms)
     VALUES (?, ?, ?, ?, ?, ?, ?)`,
    req.transferId,
    req.from,
    answer.state,
    req.unit,
    req.amount,
    answer.state === "refused" ? JSON.stringify(answer.problem) : null,
    nowMs,
  );
}

/** The state GET /v1/transfers/{id} serves. */
export function transferView(accountId: string, r: OutRecord) {
  return {
    transfer_id: r.transferId,
    status: r.state,
    from_account: accountId,
    to_account: r.to,
    amount: r.amount,
    unit: r.unit,
    reason: r.reason,
    created_at: iso(r.createdAtMs),
    updated_at: iso(r.updatedAtMs),
  };
}

/** The first answer of a completed transfer (201). */
export function completedBody(accountId: string, r: OutRecord) {
  const applied = r.slices.map((s) => ({ grantId: s.sourceGrantId, type: s.type, amount: s.amount }));
  return {
    transfer_id: r.transferId,
    status: "completed",
    from_account: accountId,
    to_account: r.to,
    amount: r.amount,
    unit: r.unit,
    ...appliedView(applied, WRITE_APPLIED_MAX),
  };
}
