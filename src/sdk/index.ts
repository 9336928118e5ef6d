/**
 * Credit Gate SDK: typed API calls and offline receipts. No Cloudflare
 * imports: runs in a gateway Worker or in Node 20+ (needs `fetch`, WebCrypto
 * and `jose`).
 */
export { CreditGateClient, type CreditGateClientOptions } from "./client";
export { CreditGateError, type ErrorCode, errorFromResponse, GateUnreachableError, isTransient } from "./errors";
export type * from "./types";
export { ReceiptVerifier, type ReceiptVerifierOptions } from "./verifier";
export { ReceiptError, type RefusalReason, type VerifiedReceipt } from "./verifier-claims";
export type { Admission, SettleReport, Usage } from "./verifier-usage";
export { ReceiptWallet, type Spend, type SpendOptions } from "./wallet";
export type { ReceiptWalletOptions } from "./wallet-options";
export type { WalletSettleReport, WalletStats } from "./wallet-settlement";
