/** How a ReceiptWallet is configured, and the defaults that fill in what the caller left out. */
import type { CreditGateClient } from "./client";
import type { FailMode } from "./types";

export interface ReceiptWalletOptions {
  client: CreditGateClient;
  accountId: string;
  unit?: string;
  /** Credits reserved per receipt (default 100). */
  receiptAmount?: number;
  /** Receipt lifetime, 1..3600 (default 60). */
  ttlSeconds?: number;
  audience?: string;
  /** Prefetch the next receipt when the current one has fewer than this left (default 20% of receiptAmount). */
  prefetchBelow?: number;
  /** …or when it expires within this (default 10 s, at most half the TTL). */
  prefetchBeforeExpiryMs?: number;
  /** Stop spending a receipt this long before its `exp`, for clock skew and latency (default 2 s). */
  retireBeforeExpiryMs?: number;
  /** After a 402, refuse locally for this long instead of asking the gate again (default 1 s). */
  exhaustedBackoffMs?: number;
  /** Settle a receipt in the background as soon as it is used up or retired (default true). */
  autoSettle?: boolean;
  /**
   * Which side settles the receipts this wallet spent from; exactly one side
   * should (default `wallet`). `verifier`: the service's ReceiptVerifier settles
   * them with what it really served; this wallet then settles at once only the
   * receipts it never handed out (used 0), and a spent one only as a fallback
   * 150 s after its `exp` (a receipt the service never saw; if the verifier
   * settled it first, the gate's replay or 409 `receipt_settled` counts as done).
   * settle() settles everything at once either way.
   */
  settledBy?: "wallet" | "verifier";
  /** spend() starts a background settleDue() at most this often, when something is due (default 1 000 ms). */
  settleDueIntervalMs?: number;
  /** When no receipt can be had because the gate is unreachable (default `closed`). */
  onGateUnreachable?: FailMode;
  /** Prefix for receipt and debit ids (default `w`). */
  idPrefix?: string;
  /** Epoch ms (test seam). */
  now?: () => number;
}

/** The options with every default filled in; what the wallet and its parts read. */
export type WalletConfig = Required<Omit<ReceiptWalletOptions, "audience">> & Pick<ReceiptWalletOptions, "audience">;

export function walletConfig(opts: ReceiptWalletOptions): WalletConfig {
  const receiptAmount = opts.receiptAmount ?? 100;
  if (!Number.isSafeInteger(receiptAmount) || receiptAmount < 1) {
    throw new Error("receiptAmount must be a positive integer");
  }
  const ttlSeconds = opts.ttlSeconds ?? 60;
  return {
    client: opts.client,
    accountId: opts.accountId,
    unit: opts.unit ?? "credits",
    receiptAmount,
    ttlSeconds,
    audience: opts.audience,
    prefetchBelow: opts.prefetchBelow ?? Math.ceil(receiptAmount / 5),
    prefetchBeforeExpiryMs: opts.prefetchBeforeExpiryMs ?? Math.min(10_000, (ttlSeconds * 1000) / 2),
    retireBeforeExpiryMs: opts.retireBeforeExpiryMs ?? Math.min(2_000, (ttlSeconds * 1000) / 4),
    exhaustedBackoffMs: opts.exhaustedBackoffMs ?? 1_000,
    autoSettle: opts.autoSettle ?? true,
    settledBy: opts.settledBy ?? "wallet",
    settleDueIntervalMs: opts.settleDueIntervalMs ?? 1_000,
    onGateUnreachable: opts.onGateUnreachable ?? "closed",
    idPrefix: opts.idPrefix ?? "w",
    now: opts.now ?? Date.now,
  };
}
