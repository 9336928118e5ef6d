/**
 * Credit Gate SDK: typed API calls and offline receipts. No Cloudflare
 * imports: runs in a gateway Worker or in Node 20+ (needs `fetch`, WebCrypto
 * and `jose`).
 */
export { CreditGateClient, type CreditGateClientOptions } from "./client";
export { CreditGateError, type ErrorCode, errorFromResponse, GateUnreachableError, isTransient } from "./errors";
export type * from "./types";
export {
  type Admission,
  ReceiptError,
  ReceiptVerifier,
  type ReceiptVerifierOptions,
  type RefusalReason,
  type SettleReport,
  type Usage,
  type VerifiedReceipt,
} from "./verifier";
export {
  ReceiptWallet,
  type ReceiptWalletOptions,
  type Spend,
  type SpendOptions,
  type WalletSettleReport,
  type WalletStats,
} from "./wallet";
