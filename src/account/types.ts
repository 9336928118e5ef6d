/** The AccountLedger's RPC surface: what the gateway sends and gets back. */
import type { Problem } from "../errors";
import type { ConversionSource, EntryRating, GrantCommand, Policy, PolicyOverrides } from "../ledger";
import type { VelocityLimits } from "../ledger/velocity";

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
  /** Velocity limits per unit; replaces them all, null (or {}) removes them. */
  velocity?: Record<string, VelocityLimits> | null;
}

export interface AccountRecord {
  account_id: string;
  name: string | null;
  parent_id: string | null;
  verified: boolean;
  metadata: Record<string, string> | null;
  low_balance: Record<string, number> | null;
  /** Present only while the account has velocity limits (records written before them have none). */
  velocity?: Record<string, VelocityLimits>;
  created_at: string;
  updated_at: string;
}

export type GrantRequest = GrantCommand;

export interface DrawRequest {
  id: string;
  unit: string;
  amount: number;
  /** Metered requests only: what priced `amount` (the gateway rated it); recorded on the entries. */
  rating?: EntryRating;
}

export interface DebitRequest extends DrawRequest {
  /**
   * `convert: true` only: every rate into `unit` the gateway knows (1 `unit` of
   * the source = n/d of this one); the account draws from those its policy's
   * `convert_from` lists, in that order, once `unit` is spent.
   */
  conversions?: ConversionSource[];
  /** Usage events only: the client's time of use, written as the entries' effective_at. */
  occurredAtMs?: number;
  /** Kept with the debit and served by GET …/debits/{debit_id}. */
  metadata: Record<string, string> | null;
}

export interface HoldRequest extends DrawRequest {
  ttlSeconds: number;
  /** `convert: true` only: as DebitRequest.conversions; the hold keeps each leg's rate until it closes. */
  conversions?: ConversionSource[];
  /** Receipts only: the signed token to serve, its `exp`, and the settle grace after it. */
  receipt?: { token: string; expiresAtMs: number; settleGraceMs: number };
}

export type PolicyPatch = PolicyOverrides;
