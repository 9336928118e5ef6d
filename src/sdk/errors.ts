/** Typed errors: a problem+json answer from the gate, or no answer at all. */
import type { ErrorCode } from "../errors";

export type { ErrorCode };

/** The gate answered with a problem (RFC 9457). `code` is stable; switch on it. */
export class CreditGateError extends Error {
  override readonly name = "CreditGateError";
  constructor(
    /** The contract's error code, or `unexpected_response` for a non-problem error body. */
    readonly code: ErrorCode | "unexpected_response",
    readonly status: number,
    readonly detail: string,
    /** Extra problem members, e.g. `available` and `requested` on 402. */
    readonly extra: Record<string, unknown> = {},
    readonly requestId: string | null = null,
  ) {
    super(`${status} ${code}: ${detail}`);
  }
}

/**
 * No usable answer from the gate after every attempt: network errors, timeouts,
 * or 502/503/504 on the last attempt. The request may or may not have been
 * processed, so whatever it would have settled or created is still open:
 * keep it and retry later with the same id.
 */
export class GateUnreachableError extends Error {
  override readonly name = "GateUnreachableError";
  readonly code = "gate_unreachable";
  /** The last attempt's HTTP status when it was a 502/503/504; null for a network error or timeout. */
  readonly status: number | null;
  /** The last attempt's problem body (or `unexpected_response`) when it had a status; null otherwise. */
  readonly problem: CreditGateError | null;
  constructor(
    readonly attempts: number,
    override readonly cause: unknown,
  ) {
    super(
      `the gate did not answer after ${attempts} attempt(s): ${cause instanceof Error ? cause.message : String(cause)}`,
    );
    this.problem = cause instanceof CreditGateError ? cause : null;
    this.status = this.problem?.status ?? null;
  }
}

/**
 * Whether a failed call may still succeed later with the same request: no
 * answer (GateUnreachableError, or anything that is not an answer from the
 * gate), a server error (5xx) or a rate limit (429). A definitive refusal
 * (another 4xx) is false: repeating the same request cannot change it.
 */
export function isTransient(e: unknown): boolean {
  if (!(e instanceof CreditGateError)) return true;
  return e.status >= 500 || e.status === 429;
}

const PROBLEM_MEMBERS = new Set(["type", "title", "status", "code", "detail"]);

/** Builds a CreditGateError from a response body (problem+json or anything else). */
export function errorFromResponse(status: number, body: unknown, requestId: string | null): CreditGateError {
  if (body !== null && typeof body === "object" && typeof (body as { code?: unknown }).code === "string") {
    const problem = body as Record<string, unknown>;
    const extra: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(problem)) if (!PROBLEM_MEMBERS.has(k)) extra[k] = v;
    return new CreditGateError(
      problem.code as ErrorCode,
      status,
      typeof problem.detail === "string" ? problem.detail : "",
      extra,
      requestId,
    );
  }
  return new CreditGateError("unexpected_response", status, `HTTP ${status} without a problem body`, {}, requestId);
}
