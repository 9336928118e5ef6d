/**
 * The HTTP contract's shapes (docs/api.md), written out by hand so the
 * SDK depends on nothing but `fetch` and `jose`.
 */

export type CreditType = "promotional" | "compensatory" | "purchased";
export type Role = "admin" | "finance" | "support" | "marketing" | "gateway" | "viewer";
export type SortKey = "priority" | "expires_at" | "type" | "effective_at" | "created";
export type HoldOnExpiry = "release" | "capture";
/** RFC 3339 text, e.g. `2026-11-25T07:31:00.000Z`. */
export type Rfc3339 = string;

export interface Balance {
  account_id: string;
  unit: string;
  as_of: Rfc3339;
  available: number;
  held: number;
  by_type: Record<CreditType, number>;
  /** Soonest first: at most 1 000 in a balance read, 10 in a write response. */
  expiring: { grant_id: string; amount: number; expires_at: Rfc3339 }[];
  /** True when `expiring` was cut short. */
  expiring_more: boolean;
  pending: { grant_id: string; amount: number; effective_at: Rfc3339 }[];
  pending_more: boolean;
}

export interface Applied {
  grant_id: string;
  type: CreditType;
  amount: number;
}

export interface AccountInput {
  name?: string | null;
  parent_id?: string | null;
  verified?: boolean;
  metadata?: Record<string, string> | null;
  low_balance?: Record<string, number> | null;
}

export interface Account {
  account_id: string;
  name: string | null;
  parent_id: string | null;
  verified: boolean;
  metadata: Record<string, string> | null;
  low_balance: Record<string, number> | null;
  created_at: Rfc3339;
  updated_at: Rfc3339;
}

export interface GrantInput {
  grant_id?: string;
  amount: number;
  unit?: string;
  type: CreditType;
  priority?: number;
  effective_at?: Rfc3339;
  expires_at?: Rfc3339 | null;
  source?: string | null;
  reason?: string | null;
  campaign?: string | null;
  incident_id?: string | null;
  cost_basis?: { amount: number; currency: string } | null;
  metadata?: Record<string, string> | null;
}

export type GrantStatus = "active" | "pending" | "expired" | "depleted" | "voided";

export interface Grant {
  grant_id: string;
  amount: number;
  unit: string;
  type: CreditType;
  priority: number;
  effective_at: Rfc3339;
  expires_at: Rfc3339 | null;
  source: string | null;
  reason: string | null;
  campaign: string | null;
  incident_id: string | null;
  cost_basis: { amount: number; currency: string } | null;
  metadata: Record<string, string> | null;
  source_grant_id: string | null;
  remaining: number;
  held: number;
  status: GrantStatus;
  created_at: Rfc3339;
  voided_at: Rfc3339 | null;
}

export interface GrantResult {
  grant: Grant;
  balance: Balance;
}

/** What a debit, hold or receipt charges: an amount, or a meter and the quantity used (priced by the gate). */
export type Charge =
  | { amount: number; meter?: never; quantity?: never }
  | { meter: string; quantity: number; amount?: never };

export type DebitInput = Charge & {
  debit_id?: string;
  /** Default `credits`; a metered request is in the meter's unit. */
  unit?: string;
  metadata?: Record<string, string>;
  /** Once `unit` is spent, draw from the policy's `convert_from` units that have a rate to it. */
  convert?: boolean;
};

export interface DebitResult extends MeteredResult {
  debit_id: string;
  amount: number;
  unit: string;
  /** At most 100 lots; GET …/debits/{debit_id} lists up to 1 000. */
  applied: Applied[];
  applied_more: boolean;
  balance: Balance;
}

/** A debit as recorded: GET /v1/accounts/{id}/debits/{debit_id}. */
export interface DebitRecord {
  debit_id: string;
  amount: number;
  unit: string;
  metadata: Record<string, string> | null;
  applied: Applied[];
  applied_more: boolean;
  txn_id: string;
  first_seq: number;
  last_seq: number;
  actor: string;
  created_at: Rfc3339;
}

export type HoldInput = Charge & {
  hold_id?: string;
  unit?: string;
  ttl_seconds?: number;
  /** As on a debit: once `unit` is spent, reserve from the policy's `convert_from` units that have a rate to it. */
  convert?: boolean;
};

export interface HoldCreated extends MeteredResult {
  hold_id: string;
  amount: number;
  unit: string;
  status: "open";
  expires_at: Rfc3339;
  applied: Applied[];
  applied_more: boolean;
  balance: Balance;
}

export interface HoldClosed {
  hold_id: string;
  status: "captured" | "released";
  captured?: number;
  released: number;
  balance: Balance;
}

export interface HoldState {
  hold_id: string;
  unit: string;
  amount: number;
  status: "open" | "captured" | "released";
  expires_at: Rfc3339;
  captured: number;
  released: number;
  created_at: Rfc3339;
  closed_at: Rfc3339 | null;
}

/** One open hold or receipt in GET /v1/accounts/{id}/holds. */
export interface OpenHold extends HoldState {
  kind: "hold" | "receipt";
}

export type ReceiptInput = Charge & {
  receipt_id?: string;
  unit?: string;
  ttl_seconds?: number;
  audience?: string;
  /** As on a debit: the receipt's hold may reserve from the policy's `convert_from` units. */
  convert?: boolean;
};

export interface ReceiptCreated extends MeteredResult {
  receipt_id: string;
  /** The ES256 JWT to present instead of calling the gate. */
  receipt: string;
  amount: number;
  unit: string;
  expires_at: Rfc3339;
  applied: Applied[];
  balance: Balance;
}

export interface SettleInput {
  receipt: string;
  used: number;
}

export interface SettleResult {
  receipt_id: string;
  used: number;
  released: number;
  balance: Balance;
}

export interface Entry {
  account_id: string;
  seq: number;
  entry_id: string;
  txn_id: string;
  kind: string;
  unit: string;
  amount: number;
  held_delta: number;
  grant_id: string | null;
  credit_type: CreditType | null;
  ref: string | null;
  actor: string;
  reason: string | null;
  effective_at: Rfc3339;
  recorded_at: Rfc3339;
  prev_hash: string;
  hash: string;
  /** Metered entries only (absent otherwise): hashed like every other member when present. */
  rating?: EntryRating;
  /** Entries a converting debit drew from another unit's lot only: the debit's unit and the rate used. */
  conversion?: { to_unit: string; numerator: number; denominator: number };
}

/** What a metered entry was rated by: the meter, the quantity asked for, the price version used. */
export interface EntryRating {
  meter: string;
  quantity: number;
  price_version: number;
}

/** Beside `amount` in a metered debit, hold or receipt result. */
export interface MeteredResult {
  meter?: string;
  quantity?: number;
  price_version?: number;
}

export interface LedgerPage {
  entries: Entry[];
  next_after_seq: number | null;
}

export interface Policy {
  order: SortKey[];
  type_order: CreditType[];
  require_verified_for_promotional: boolean;
  hold_on_expiry: HoldOnExpiry;
}

/** Account overrides: a field set to null drops the override. */
export type PolicyOverridesPatch = { [K in keyof Policy]?: Policy[K] | null };

export interface ApiKeyInput {
  name: string;
  role: Role;
  max_grant_amount?: number | null;
}

export interface ApiKey {
  id: string;
  name: string;
  role: Role;
  max_grant_amount: number | null;
  created_at: Rfc3339;
  revoked_at: Rfc3339 | null;
}

export interface ApiKeyCreated extends ApiKey {
  /** Shown once; stored hashed by the gate. */
  key: string;
}

export interface PublicJwk {
  kty: "EC";
  crv: "P-256";
  x: string;
  y: string;
  kid: string;
  alg: "ES256";
  use: "sig";
}

export interface Jwks {
  keys: PublicJwk[];
}

/**
 * What to do when the gate cannot be reached (network error, timeout, or
 * 502/503/504 after the client's retries). `closed` refuses the request;
 * `open` admits it and flags it so the usage is collected once the gate is
 * back. Default: closed.
 */
export type FailMode = "closed" | "open";

/** Keeps background work alive past the response (a Worker's `ctx.waitUntil`). */
export type WaitUntil = (promise: Promise<unknown>) => void;
