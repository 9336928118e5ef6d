/**
 * Credit Gate SDK: typed API calls and offline receipts. No Cloudflare
 * imports: runs in a gateway Worker or in Node 20+ (needs `fetch`, WebCrypto
 * and `jose`).
 */
export { CreditGateClient, type CreditGateClientOptions } from "./client";
export { CreditGateError, type ErrorCode, errorFromResponse, GateUnreachableError } from "./errors";
export type * from "./types";
export {
  type Admission,
  ReceiptError,
  ReceiptVerifier,
  type ReceiptVerifierOptions,
  type RefusalReason,
  type Usage,
  type VerifiedReceipt,
} from "./verifier";
export {
  ReceiptWallet,
  type ReceiptWalletOptions,
  type Spend,
  type SpendOptions,
  type WalletStats,
} from "./wallet";
