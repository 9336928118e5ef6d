/**
 * The closed list of error codes, their HTTP statuses, and problem+json
 * (RFC 9457) bodies. docs/errors.md describes when each one happens.
 */

export const ERROR_CODES = [
  "invalid_request",
  "invalid_json",
  "invalid_amount",
  "unauthorized",
  "invalid_receipt",
  "insufficient_credits",
  "forbidden",
  "grant_limit_exceeded",
  "account_not_verified",
  "not_found",
  "account_not_found",
  "grant_not_found",
  "hold_not_found",
  "receipt_not_found",
  "invoice_not_found",
  "transfer_not_found",
  "idempotency_conflict",
  "hold_closed",
  "receipt_settled",
  "grant_closed",
  "approval_closed",
  // campaigns and codes (src/api/redemptions.ts)
  "already_redeemed",
  "campaign_closed",
  "code_not_found",
  "payload_too_large",
  "unsupported_media_type",
  "velocity_limit",
  "clock_skew",
  "internal_error",
  // a production Worker carrying FAULT_INJECTION (src/faults.ts)
  "misconfigured",
  "overloaded",
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export function statusOf(code: ErrorCode): 400 | 401 | 402 | 403 | 404 | 409 | 413 | 415 | 429 | 500 | 503 {
  switch (code) {
    case "invalid_request":
    case "invalid_json":
    case "invalid_amount":
    case "clock_skew":
      return 400;
    case "unauthorized":
    case "invalid_receipt":
      return 401;
    case "insufficient_credits":
      return 402;
    case "forbidden":
    case "grant_limit_exceeded":
    case "account_not_verified":
      return 403;
    case "not_found":
    case "account_not_found":
    case "grant_not_found":
    case "hold_not_found":
    case "receipt_not_found":
    case "invoice_not_found":
    case "transfer_not_found":
    case "code_not_found":
      return 404;
    case "idempotency_conflict":
    case "hold_closed":
    case "receipt_settled":
    case "grant_closed":
    case "approval_closed":
    case "already_redeemed":
    case "campaign_closed":
      return 409;
    case "payload_too_large":
      return 413;
    case "unsupported_media_type":
      return 415;
    case "velocity_limit":
      return 429;
    case "internal_error":
    case "misconfigured":
      return 500;
    case "overloaded":
      return 503;
  }
}

const TITLES: Record<ErrorCode, string> = {
  invalid_request: "Invalid request",
  invalid_json: "Body is not valid JSON",
  invalid_amount: "Invalid amount",
  unauthorized: "Unauthorized",
  invalid_receipt: "Invalid receipt",
  insufficient_credits: "Insufficient credits",
  forbidden: "Forbidden",
  grant_limit_exceeded: "Grant limit exceeded",
  account_not_verified: "Account not verified",
  not_found: "Not found",
  account_not_found: "Account not found",
  grant_not_found: "Grant not found",
  hold_not_found: "Hold not found",
  receipt_not_found: "Receipt not found",
  invoice_not_found: "Invoice not found",
  transfer_not_found: "Transfer not found",
  idempotency_conflict: "Idempotency key reused with a different body",
  hold_closed: "Hold already closed",
  receipt_settled: "Receipt already settled",
  grant_closed: "Grant closed",
  approval_closed: "Approval already decided",
  already_redeemed: "Already redeemed",
  campaign_closed: "Campaign closed",
  code_not_found: "Code not found",
  payload_too_large: "Payload too large",
  unsupported_media_type: "Unsupported media type",
  velocity_limit: "Velocity limit exceeded",
  clock_skew: "Event time ahead of the account's clock",
  internal_error: "Internal error",
  misconfigured: "Deployment misconfigured",
  overloaded: "Overloaded",
};

/** A refusal as a value: what the DO and routes return, and the body served. */
export interface Problem {
  code: ErrorCode;
  detail: string;
  /** Extra problem members, e.g. `available` and `requested` for 402. */
  extra?: Record<string, string | number | boolean | null | string[]>;
}

export function problemBody(p: Problem): Record<string, unknown> {
  return {
    type: `https://credit-gate.dev/errors/${p.code}`,
    title: TITLES[p.code],
    status: statusOf(p.code),
    code: p.code,
    detail: p.detail,
    ...p.extra,
  };
}

/** Thrown by middleware and handlers; onError turns it into problem+json. */
export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    detail: string,
    readonly extra?: Problem["extra"],
  ) {
    super(detail);
  }
  get problem(): Problem {
    return this.extra
      ? { code: this.code, detail: this.message, extra: this.extra }
      : { code: this.code, detail: this.message };
  }
}
