/** The AccountLedger's RPC surface: what the gateway sends and gets back. */
import type { Problem } from "../errors";
import type { GrantCommand, Policy, PolicyOverrides } from "../ledger";

/** Who asks and under which global policy; every mutation carries one. */
export interface OpContext {
  accountId: string;
  /** "<api_key_id>:<role>", "admin-token:admin" or "system:<job>". */
  actor: string;
  requestId: string;
  /** As the gateway read it; null when D1 could not say (the account then uses the last it saw). */
  globalPolicy: Policy | null;
}

/** Client-supplied id and the canonical hash of the body it came with. */
export interface Idempotency {
  key: string;
  bodyHash: string;
}

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** What a ledger write did: the gateway's request log line carries it. */
export interface WriteFacts {
  op: string;
  entries: number;
  head_seq: number;
}

/** What an operation answered: a body to serve, or a refusal. */
export type Outcome =
  | { ok: true; status: number; body: Json; replayed: boolean; write?: WriteFacts }
  | { ok: false; problem: Problem };

export interface AccountInput {
  name?: string | null;
  parent_id?: string | null;
  verified?: boolean;
  metadata?: Record<string, string> | null;
  low_balance?: Record<string, number> | null;
}

export interface AccountRecord {
  account_id: string;
  name: string | null;
  parent_id: string | null;
  verified: boolean;
  metadata: Record<string, string> | null;
  low_balance: Record<string, number> | null;
  created_at: string;
  updated_at: string;
}

export type GrantRequest = GrantCommand;

export interface DrawRequest {
  id: string;
  unit: string;
  amount: number;
}

export interface DebitRequest extends DrawRequest {
  /** Kept with the debit and served by GET …/debits/{debit_id}. */
  metadata: Record<string, string> | null;
}

export interface HoldRequest extends DrawRequest {
  ttlSeconds: number;
  /** Receipts only: the signed token to serve, its `exp`, and the settle grace after it. */
  receipt?: { token: string; expiresAtMs: number; settleGraceMs: number };
}

export type PolicyPatch = PolicyOverrides;
